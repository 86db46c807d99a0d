/**
 * Finds a key named twice at the top level of a JSON object. JSON.parse keeps
 * the last of two equal keys, other parsers keep the first (RFC 8259 §4 leaves
 * it open), so a frame that names `taskId` twice can pass the relay's check on
 * one and be read by the server as the other. Pure and linear: one pass over
 * the top level, strings skipped with indexOf, nested values skipped by depth
 * (their keys may repeat freely), no second parse of the frame.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** JSON's four whitespace characters (RFC 8259 §2). */
function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(text: string, at: number): number {
  let i = at;
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** Index of the quote that closes the string opening at `start`, or -1. */
function stringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote === -1) return -1;
    // A quote is escaped when an odd run of backslashes precedes it. Each run is
    // walked once (it ends at this quote), so the whole scan stays linear.
    let backslashes = 0;
    for (let k = quote - 1; k > start && text.charCodeAt(k) === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** Index just past the object or array opening at `start`, or -1. Iterative: depth is unbounded. */
function compositeEnd(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i === -1) return -1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** Index just past the value starting at `start`, or -1. */
function valueEnd(text: string, start: number): number {
  const c = text.charCodeAt(start);
  if (c === QUOTE) {
    const end = stringEnd(text, start);
    return end === -1 ? -1 : end + 1;
  }
  if (c === OPEN_BRACE || c === OPEN_BRACKET) return compositeEnd(text, start);
  // A number, true, false or null: up to the next separator.
  let i = start;
  while (i < text.length) {
    const d = text.charCodeAt(i);
    if (d === COMMA || d === CLOSE_BRACE || isSpace(d)) break;
    i++;
  }
  return i;
}

/** Whether the string between the quotes at `open` and `close` contains an escape. */
function hasEscape(text: string, open: number, close: number): boolean {
  for (let i = open + 1; i < close; i++) if (text.charCodeAt(i) === BACKSLASH) return true;
  return false;
}

/**
 * Which of `names` the key between the quotes at `open` and `close` is, or -1.
 * Keys are compared as JSON.parse reads them: `"ta\u0073kId"` is `taskId`.
 * Only a key with an escape is decoded (rare); the others are compared in place.
 */
function nameIndex(text: string, open: number, close: number, names: readonly string[]): number {
  const length = close - open - 1;
  for (let n = 0; n < names.length; n++) {
    const name = names[n] as string;
    if (length === name.length && text.startsWith(name, open + 1)) return n;
  }
  if (!hasEscape(text, open, close)) return -1;
  let decoded: unknown;
  try {
    decoded = JSON.parse(text.slice(open, close + 1));
  } catch {
    return -1;
  }
  return names.indexOf(decoded as string);
}

/**
 * The first of `names` that the top-level object in `text` names more than
 * once (keys compared after decoding escapes), or null. `text` must be JSON
 * that JSON.parse accepted as an object; on anything else this returns null
 * without throwing. At most 31 names.
 */
export function repeatedTopLevelKey(text: string, names: readonly string[]): string | null {
  let seen = 0; // bit n: names[n] was met (a handful of names, so a bitmask is enough)
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) return null;
  i++;
  for (;;) {
    i = skipSpace(text, i);
    if (text.charCodeAt(i) !== QUOTE) return null; // `}`: an empty object
    const close = stringEnd(text, i);
    if (close === -1) return null;
    const n = nameIndex(text, i, close, names);
    if (n !== -1) {
      if (seen & (1 << n)) return names[n] as string;
      seen |= 1 << n;
    }
    i = skipSpace(text, close + 1) + 1; // past the colon
    i = valueEnd(text, skipSpace(text, i));
    if (i === -1) return null;
    i = skipSpace(text, i);
    if (text.charCodeAt(i) !== COMMA) return null; // `}`: the last member
    i++;
  }
}
