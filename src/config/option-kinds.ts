/**
 * How a setting's text becomes its value. Each kind's `parse` return type is
 * the type of every option of that kind in `Config` (options.ts derives the
 * type from the table), so a kind is the one place that says both.
 */
import type { LogLevel } from "../core/ports.ts";
import { MAX_CAPACITY } from "../protocol/messages.ts";
import { normaliseServerUrl } from "../protocol/url.ts";

/** What a parser gets besides the text: how to refuse it, and the text as errors may show it. */
export interface ParseContext {
  fail(why: string): never;
  /** The raw text, or `***` for a secret. */
  shown: string;
}

export interface OptionKind<T> {
  /**
   * An empty value is a value (a text can be empty); for the other kinds an
   * empty value means the default.
   */
  readonly keepsEmpty: boolean;
  /** What an unset option without a default reads as (`null` unless said otherwise). */
  readonly unset?: () => T;
  parse(raw: string, ctx: ParseContext): T;
}

const integer = (min: number, max = Number.MAX_SAFE_INTEGER): OptionKind<number> => ({
  keepsEmpty: false,
  parse(raw, { fail, shown }) {
    if (!/^\d+$/.test(raw.trim())) fail(`expected a whole number, got "${shown}"`);
    const n = Number(raw.trim());
    if (n < min || n > max) fail(`must be between ${min} and ${max}, got ${n}`);
    return n;
  },
});

/** One of a fixed set of words, compared exactly. */
const choice = <const T extends string>(
  words: readonly T[],
  why: string,
  keepsEmpty: boolean,
): OptionKind<T> => ({
  keepsEmpty,
  parse: (raw, { fail }) => words.find((w) => w === raw) ?? fail(why),
});

const TRUE = ["true", "1", "yes"];
const FALSE = ["false", "0", "no"];

export const KINDS = {
  /** Text as given; empty stays empty. */
  text: { keepsEmpty: true, parse: (raw: string) => raw } satisfies OptionKind<string>,
  /** Text where empty means not set (a key, a token, a file that is optional). */
  optionalText: {
    keepsEmpty: true,
    parse: (raw: string) => raw || null,
  } satisfies OptionKind<string | null>,
  url: {
    keepsEmpty: false,
    parse(raw: string, { fail }: ParseContext): string | null {
      if (raw.trim() === "") return null;
      const url = normaliseServerUrl(raw);
      return url.ok ? url.value : fail(url.error);
    },
  } satisfies OptionKind<string | null>,
  /**
   * An HTTP proxy's URL: http:// only (the tunnel is CONNECT over plain HTTP), a bare
   * host:port read as http:// as curl does. Errors never show it: it may hold a password.
   */
  proxyUrl: {
    keepsEmpty: false,
    parse(raw: string, { fail }: ParseContext): string | null {
      const text = raw.trim();
      if (text === "") return null;
      let url: URL;
      try {
        url = new URL(/^[a-z][a-z\d+.-]*:\/\//i.test(text) ? text : `http://${text}`);
      } catch {
        return fail("not a valid proxy URL");
      }
      if (url.protocol !== "http:") return fail("the proxy URL must be http://host:port");
      return url.href;
    },
  } satisfies OptionKind<string | null>,
  port: integer(0, 65535),
  ms: integer(1, 2_147_483_647),
  count: integer(0),
  bytes: integer(1024),
  capacity: {
    keepsEmpty: false,
    parse: (raw: string, ctx: ParseContext): number | "auto" =>
      raw.trim() === "auto" ? "auto" : integer(0, MAX_CAPACITY).parse(raw, ctx),
  } satisfies OptionKind<number | "auto">,
  /** Comma separated; blanks dropped. Unset is the empty list. */
  list: {
    keepsEmpty: false,
    unset: (): string[] => [],
    parse: (raw: string) =>
      raw
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
  } satisfies OptionKind<string[]>,
  level: choice<LogLevel>(
    ["debug", "info", "warn", "error"],
    "expected debug, info, warn or error",
    false,
  ),
  /** An empty value is refused, not the default. */
  synchronous: choice(["normal", "full"], "expected normal or full", true),
  bool: {
    keepsEmpty: false,
    parse(raw: string, { fail }: ParseContext): boolean {
      const word = raw.trim().toLowerCase();
      if (!TRUE.includes(word) && !FALSE.includes(word)) fail("expected true or false");
      return TRUE.includes(word);
    },
  } satisfies OptionKind<boolean>,
} as const;
