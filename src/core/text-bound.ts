/**
 * Bounded copies of free text. The relay forwards frames in full, but what it
 * keeps in history (a task's `error` and last reported status, the connection
 * log's details) comes from peers and could be as large as a frame; every row
 * a read route returns would carry it again. Kept text is cut to a byte
 * budget, on a character boundary, and says that it was cut and how long it
 * was (docs/protocol.md "HTTP shapes"; SECURITY.md "Memory bounds").
 */

/** Most UTF-8 bytes kept of a task's `error` and of its last reported status. */
export const HISTORY_TEXT_MAX_BYTES = 4096;
/** Most UTF-8 bytes kept of a connection-log entry's details. */
export const LOG_DETAILS_MAX_BYTES = 1024;

/** The budget must leave room for some text beside the mark. */
const MIN_BUDGET = 64;

/** What ends a cut text; `bytes` is the size of the whole original, in UTF-8 bytes. */
export const truncationMark = (bytes: number): string => `… [truncated, ${bytes} bytes]`;

/** Matches a text cut by `boundText`, capturing the original size. */
export const TRUNCATED = /… \[truncated, (\d+) bytes\]$/;

const encoder = new TextEncoder();

/**
 * `text` itself when its UTF-8 form fits in `maxBytes`; otherwise its longest
 * prefix that fits together with the truncation mark, never splitting a
 * character (a surrogate pair stays whole). The result is at most `maxBytes`
 * bytes, mark included, and bounding it again changes nothing.
 */
export function boundText(text: string, maxBytes: number): string {
  if (!Number.isInteger(maxBytes) || maxBytes < MIN_BUDGET) {
    throw new RangeError(`maxBytes must be an integer >= ${MIN_BUDGET}, got ${maxBytes}`);
  }
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short texts need no measuring.
  if (text.length * 3 <= maxBytes) return text;
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes <= maxBytes) return text;
  const mark = truncationMark(bytes);
  const budget = maxBytes - Buffer.byteLength(mark, "utf8");
  // encodeInto stops before the first character that does not fit whole, so
  // `read` ends on a character boundary. One unit more than the budget lets it
  // see both halves of a pair that starts at the last place that could fit.
  const { read } = encoder.encodeInto(text.slice(0, budget + 1), new Uint8Array(budget));
  return text.slice(0, read) + mark;
}

export function boundNullable(text: string | null, maxBytes: number): string | null {
  return text === null ? null : boundText(text, maxBytes);
}
