/**
 * A frame that names `type` or `taskId` twice at its top level is ambiguous:
 * JSON.parse keeps the last, other parsers the first. The relay refuses it
 * (protocol.md, "Frames"); nested objects may repeat keys freely.
 */
import { describe, expect, test } from "bun:test";
import { repeatedTopLevelKey } from "../../src/protocol/duplicate-keys.ts";
import { parseDaemonFrame, parseEnvelope, parseServerFrame } from "../../src/protocol/parse.ts";
import { mulberry32 } from "./fakes.ts";

const NAMES = ["type", "taskId"] as const;
const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;

/** [name, frame text, the repeated key or null]; every text is valid JSON (checked below). */
const cases: Array<[string, string, string | null]> = [
  // Refused: the routing fields named twice, however they are spelled.
  ["taskId twice", '{"type":"taskOutput","taskId":"a","output":"x","taskId":"b"}', "taskId"],
  ["taskId twice with the same value", '{"type":"taskOutput","taskId":"a","taskId":"a"}', "taskId"],
  ["type twice", '{"type":"heartbeat","activeTasks":[],"type":"taskOutput"}', "type"],
  ["type first a number, then a string", '{"type":5,"type":"heartbeat","activeTasks":[]}', "type"],
  ["taskId three times", '{"taskId":"a","type":"x","taskId":"b","taskId":"c"}', "taskId"],
  [
    "type and taskId both twice: the first seen twice",
    '{"taskId":1,"type":2,"type":3,"taskId":4}',
    "type",
  ],
  ["an escaped letter in the second key", '{"type":"x","taskId":"a","ta\\u0073kId":"b"}', "taskId"],
  ["an escaped letter in the first key", '{"t\\u0079pe":"x","type":"y"}', "type"],
  ["a key wholly escaped", '{"type":"x","\\u0074\\u0079\\u0070\\u0065":"y"}', "type"],
  ["escapes in upper-case hex", '{"taskId":"a","type":"x","tas\\u006BId":"b"}', "taskId"],
  [
    "whitespace everywhere",
    ' \r\n\t{ "taskId" : "a" ,\n\t"type"\t:\t"x" , "taskId"\r\n:\r\n"b" } \n',
    "taskId",
  ],
  [
    "after a string holding braces, brackets, colons and escaped quotes",
    '{"type":"x","output":"}]{[\\",\\"taskId\\":\\"z\\"\\\\","taskId":"a","taskId":"b"}',
    "taskId",
  ],
  ["after a string that ends in an escaped backslash", '{"type":"a\\\\","type":"b"}', "type"],
  [
    "after a key that ends in an escaped backslash",
    '{"x\\\\":1,"taskId":"a","taskId":"b","type":"t"}',
    "taskId",
  ],
  [
    "after nested objects and arrays with braces in strings",
    '{"type":"x","n":{"a":[{"}":"]"},[[{}]]],"b":{"taskId":"q"}},"taskId":"a","taskId":"b"}',
    "taskId",
  ],
  [
    "after numbers, booleans and null",
    '{"type":"x","n":-1.5e+3,"t":true,"f":false,"z":null,"taskId":"a","taskId":"b"}',
    "taskId",
  ],
  ["after deep nesting", `{"type":"x","taskId":"a","n":${deep(10_000)},"taskId":"b"}`, "taskId"],
  [
    "on an authenticate frame",
    '{"type":"authenticate","apiKey":"k","machineId":"m","hostname":"h","maxConcurrentTasks":1,"type":"authenticate"}',
    "type",
  ],
  // Accepted: nothing ambiguous at the top level.
  ["an ordinary frame", '{"type":"taskOutput","taskId":"a","output":"x"}', null],
  ["an empty object", "{}", null],
  ["an empty object with whitespace", " { } ", null],
  [
    "repeats inside a nested object",
    '{"type":"taskOutput","taskId":"a","meta":{"taskId":"b","taskId":"c","type":1,"type":2}}',
    null,
  ],
  ["repeats inside an array", '{"type":"x","items":[{"type":1},{"type":2},{"taskId":"t"}]}', null],
  ["other top-level keys repeated", '{"type":"x","output":"a","output":"b","n":1,"n":2}', null],
  ["the names as values", '{"type":"taskId","x":"taskId","taskId":"type","y":["type"]}', null],
  [
    "the names inside other keys",
    '{"a\\"taskId\\"":1,"taskIds":2,"TaskId":3,"taskid":4,"taskId ":5," type":6,"type":"x","taskId":"t"}',
    null,
  ],
  [
    "a string value spelling a second key",
    '{"type":"x","output":"\\",\\"taskId\\":\\"b","taskId":"a"}',
    null,
  ],
  ["an escaped near miss", '{"type":"x","taskId":"a","ta\\u0073kid":"b"}', null],
  ["deep nesting and one taskId", `{"type":"x","n":${deep(100_000)},"taskId":"a"}`, null],
  ["unicode keys and values", '{"type":"é","☃":"\\ud83d\\ude00","taskId":"ü"}', null],
];

describe("repeatedTopLevelKey", () => {
  test("every case is valid JSON (the scan's precondition)", () => {
    for (const [, text] of cases) expect(() => JSON.parse(text)).not.toThrow();
  });

  test.each(cases)("%s", (_name, text, expected) => {
    expect(repeatedTopLevelKey(text, NAMES)).toBe(expected);
  });

  test("a 1 MiB value is skipped, not searched for keys", () => {
    const output = '\\"taskId\\":\\"b\\",'.repeat(60_000);
    const text = `{"type":"taskOutput","taskId":"a","output":"${output}"}`;
    expect(text.length).toBeGreaterThan(1_000_000);
    expect(repeatedTopLevelKey(text, NAMES)).toBeNull();
    expect(repeatedTopLevelKey(`${text.slice(0, -1)},"taskId":"c"}`, NAMES)).toBe("taskId");
  });

  test("input that is not a JSON object gives null and never throws", () => {
    const rnd = mulberry32(0xd0_0b1e);
    const seeds = cases.map(([, text]) => text).filter((t) => t.length < 500);
    for (let i = 0; i < 3000; i++) {
      const base = seeds[Math.floor(rnd() * seeds.length)] as string;
      const cut = base.slice(0, Math.floor(rnd() * base.length));
      expect(() => repeatedTopLevelKey(cut, NAMES)).not.toThrow();
    }
    for (const text of ["", "[]", "null", '"type"', '{"type"', '{"type":"x",', '{"a\\', "{{{"]) {
      expect(repeatedTopLevelKey(text, NAMES)).toBeNull();
    }
  });
});

// ---- against a reference: frames built from known members ----------------------------

type Member = [key: string, value: unknown];

/** Spells a key with random \uXXXX escapes, so decoding is exercised. */
function spellKey(rnd: () => number, key: string): string {
  let out = '"';
  for (const ch of key) {
    const code = ch.charCodeAt(0);
    const hex = code.toString(16).padStart(4, "0");
    if (rnd() < 0.2) out += `\\u${rnd() < 0.5 ? hex : hex.toUpperCase()}`;
    else out += JSON.stringify(ch).slice(1, -1);
  }
  return `${out}"`;
}

const KEYS = ["type", "taskId", "output", "taskIds", "Type", "x", 'a"b', "c\\d", "{", "]"];
const STRINGS = ['"}', "\\", '\\"', "{[", "taskId", '","taskId":"', "é☃", ""];

function randomValue(rnd: () => number, depth: number): unknown {
  const pick = Math.floor(rnd() * (depth > 3 ? 5 : 7));
  if (pick === 0) return null;
  if (pick === 1) return rnd() < 0.5;
  if (pick === 2) return Math.floor(rnd() * 2000) - 1000;
  if (pick <= 4) return STRINGS[Math.floor(rnd() * STRINGS.length)];
  if (pick === 5)
    return Array.from({ length: Math.floor(rnd() * 3) }, () => randomValue(rnd, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < Math.floor(rnd() * 3); i++)
    o[KEYS[Math.floor(rnd() * KEYS.length)] as string] = randomValue(rnd, depth + 1);
  return o;
}

const space = (rnd: () => number): string =>
  ["", " ", "\n", "\t\r\n "][Math.floor(rnd() * 4)] as string;

function build(rnd: () => number, members: Member[]): string {
  const body = members.map(
    ([k, v]) =>
      `${space(rnd)}${spellKey(rnd, k)}${space(rnd)}:${space(rnd)}${JSON.stringify(v)}${space(rnd)}`,
  );
  return `${space(rnd)}{${body.join(",")}}${space(rnd)}`;
}

/** The name whose second occurrence comes first, as the scan reports it. */
function reference(members: Member[]): string | null {
  const seen = new Set<string>();
  for (const [k] of members) {
    if (k !== "type" && k !== "taskId") continue;
    if (seen.has(k)) return k;
    seen.add(k);
  }
  return null;
}

test("random frames: the scan agrees with the members they were built from", () => {
  const rnd = mulberry32(0x7a5c_1d);
  let repeated = 0;
  for (let i = 0; i < 4000; i++) {
    const members: Member[] = Array.from({ length: Math.floor(rnd() * 8) }, () => [
      // The routing names a third of the time, so repeats are common but not the rule.
      (rnd() < 0.33
        ? NAMES[Math.floor(rnd() * 2)]
        : KEYS[Math.floor(rnd() * KEYS.length)]) as string,
      randomValue(rnd, 0),
    ]);
    const text = build(rnd, members);
    expect(() => JSON.parse(text)).not.toThrow();
    const expected = reference(members);
    if (expected !== null) repeated++;
    expect({ text, found: repeatedTopLevelKey(text, NAMES) }).toEqual({ text, found: expected });
  }
  // Both outcomes were tried often.
  expect(repeated).toBeGreaterThan(1000);
  expect(repeated).toBeLessThan(3000);
});

// ---- the fast path: exact, never a guess ------------------------------------------------
//
// Without a `\u` in the text and with each name's literal `"name"` there at most once,
// repeatedTopLevelKey answers null without the scan. These frames sit on either side of
// that line, so a fast path that decided too much (or too little) fails here.

/** How many times `"name"`, quotes included, occurs in `text` (overlapping ones too). */
function literalCount(text: string, name: string): number {
  const quoted = `"${name}"`;
  let count = 0;
  for (let at = text.indexOf(quoted); at !== -1; at = text.indexOf(quoted, at + 1)) count++;
  return count;
}

/** Whether a short escape (`\"` `\\` `\/` `\n` and the like) can make one of the name's characters. */
const shortEscapable = (name: string): boolean =>
  [...name].some((ch) => ch < " " || ch === '"' || ch === "\\" || ch === "/");

/** Whether the fast path may answer for `text` without the scan. */
const fastPathApplies = (text: string, names: readonly string[] = NAMES): boolean =>
  !names.some(shortEscapable) &&
  !text.includes("\\u") &&
  names.every((name) => literalCount(text, name) <= 1);

describe("the fast path", () => {
  /** [name, text, the names, the repeated key or null, whether the fast path may answer] */
  const fastCases: Array<[string, string, readonly string[], string | null, boolean]> = [
    ["an ordinary frame", '{"type":"taskOutput","taskId":"a","output":"x\\ny"}', NAMES, null, true],
    ["a second type hidden by \\u0074ype", '{"type":"x","\\u0074ype":"y"}', NAMES, "type", false],
    [
      "a second type hidden by t\\u0079pe",
      '{"t\\u0079pe":"x","taskId":"a","type":"y"}',
      NAMES,
      "type",
      false,
    ],
    [
      "a \\u elsewhere, nothing repeated",
      '{"type":"x","taskId":"a","output":"\\u00e9"}',
      NAMES,
      null,
      false,
    ],
    [
      'an escaped backslash before a u ("\\\\u")',
      '{"type":"\\\\u","taskId":"a"}',
      NAMES,
      null,
      false,
    ],
    [
      '"type" twice more in a nested object, once at the top',
      '{"type":"x","meta":{"type":1,"type":2},"taskId":"a"}',
      NAMES,
      null,
      false,
    ],
    [
      '"type" in a nested object, twice at the top',
      '{"type":"x","meta":{"type":1},"type":"y"}',
      NAMES,
      "type",
      false,
    ],
    ['"type" as a value, once as a key', '{"type":"type","taskId":"type"}', NAMES, null, false],
    ['"type" as a value, twice as a key', '{"type":"type","type":"x"}', NAMES, "type", false],
    [
      'a string ending in \\"type", once at the top',
      '{"type":"x","output":"say \\"type"}',
      NAMES,
      null,
      false,
    ],
    [
      'a string ending in \\"type", twice at the top',
      '{"type":"x","output":"say \\"type","type":"y"}',
      NAMES,
      "type",
      false,
    ],
    [
      'escaped quotes: \\"type\\" and \\"taskId\\" inside an output string',
      '{"type":"taskOutput","taskId":"a","output":"\\"type\\":\\"x\\",\\"taskId\\":\\"b\\",\\"type\\""}',
      NAMES,
      null,
      true,
    ],
    [
      "escaped quotes inside an output string, then a second taskId",
      '{"type":"taskOutput","taskId":"a","output":"\\"type\\":\\"taskId\\"","taskId":"b"}',
      NAMES,
      "taskId",
      false,
    ],
    // Names the short escapes can spell: the fast path must step aside for them.
    ["a name with a slash, spelled \\/", '{"a/b":1,"a\\/b":2}', ["a/b"], "a/b", false],
    ['a name with a quote, spelled \\"', '{"a\\"b":1,"a\\"b":2}', ['a"b'], 'a"b', false],
    ["a name with a backslash, spelled \\\\", '{"c\\\\d":1,"c\\\\d":2}', ["c\\d"], "c\\d", false],
    ["a name with a newline, spelled \\n", '{"a\\nb":1,"a\\nb":2}', ["a\nb"], "a\nb", false],
    [
      "one such name among plain ones",
      '{"type":"x","a\\/b":1,"taskId":"t","a/b":2}',
      ["type", "taskId", "a/b"],
      "a/b",
      false,
    ],
  ];

  test("every case is valid JSON, and the fast path covers the ones it should", () => {
    for (const [name, text, names, , applies] of fastCases) {
      expect(() => JSON.parse(text)).not.toThrow();
      expect({ name, applies: fastPathApplies(text, names) }).toEqual({ name, applies });
    }
  });

  test.each(fastCases)("%s", (_name, text, names, expected) => {
    expect(repeatedTopLevelKey(text, names)).toBe(expected);
  });

  test("the names' quoted forms follow the names: new arrays, and one changed in place", () => {
    const text = '{"other":1,"other":2,"type":3}';
    for (let round = 0; round < 3; round++) {
      expect(repeatedTopLevelKey(text, ["type"])).toBeNull();
      expect(repeatedTopLevelKey(text, ["other"])).toBe("other");
    }
    const names = ["type", "taskId"];
    expect(repeatedTopLevelKey(text, names)).toBeNull();
    names[1] = "other";
    expect(repeatedTopLevelKey(text, names)).toBe("other");
    names[1] = "a/b";
    expect(repeatedTopLevelKey('{"a/b":1,"a\\/b":2}', names)).toBe("a/b");
    names.pop();
    expect(repeatedTopLevelKey(text, names)).toBeNull();
  });
});

// ---- the fast path against a reference: raw frames, escapes and all -------------------

/**
 * The top-level keys of a JSON object, decoded, in order: a tiny walker written
 * apart from the module (character by character, strings decoded by JSON.parse).
 */
function topLevelKeys(text: string): string[] {
  let i = 0;
  const ws = () => {
    while (" \t\n\r".includes(text[i] ?? "x")) i++;
  };
  const str = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '"') str();
    else if (c === "{") members();
    else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i++] === "]") return;
      }
    } else while (i < text.length && !",}] \t\n\r".includes(text[i] as string)) i++;
  };
  const members = (): string[] => {
    const keys: string[] = [];
    i++;
    ws();
    if (text[i] === "}") {
      i++;
      return keys;
    }
    for (;;) {
      ws();
      keys.push(str());
      ws();
      i++; // the colon
      value();
      ws();
      if (text[i++] === "}") return keys;
    }
  };
  ws();
  return members();
}

/** The name whose second top-level occurrence comes first, or null. */
function referenceRepeat(text: string, names: readonly string[]): string | null {
  const seen = new Set<string>();
  for (const key of topLevelKeys(text)) {
    if (!names.includes(key)) continue;
    if (seen.has(key)) return key;
    seen.add(key);
  }
  return null;
}

/** Raw key spellings: the names literally and through `\u`, near misses, escaped quotes. */
const PLAIN_KEYS = [
  '"type"',
  '"taskId"',
  '"other"',
  '"types"',
  '"Type"',
  '"\\"type\\""',
  '"type\\\\"',
];
const ESCAPED_KEYS = ['"t\\u0079pe"', '"\\u0074ype"', '"ta\\u0073kId"', '"\\u0074askI\\u0064"'];
/** Raw string values with quotes and backslashes, some spelling the names. */
const PLAIN_STRINGS = [
  '"type"',
  '"taskId"',
  '"\\"type\\""',
  '"say \\"taskId\\":\\"b\\""',
  '"a\\"type"',
  '"\\\\"',
  '"}{][,:"',
  '""',
  '"line\\nline\\t\\"q\\"\\/"',
];
const ESCAPED_STRINGS = ['"\\\\u0074ype"', '"\\u00e9\\ud83d\\ude00"', '"\\u0022type\\u0022"'];

function rawValue(rnd: () => number, depth: number, plain: boolean): string {
  const pick = (pool: string[]) => pool[Math.floor(rnd() * pool.length)] as string;
  const strings = plain ? PLAIN_STRINGS : [...PLAIN_STRINGS, ...ESCAPED_STRINGS];
  const keys = plain ? PLAIN_KEYS : [...PLAIN_KEYS, ...ESCAPED_KEYS];
  const kind = Math.floor(rnd() * (depth > 2 ? 4 : 6));
  if (kind === 0) return pick(["null", "true", "false", "-12.5e3", "0"]);
  if (kind <= 3) return pick(strings);
  const n = Math.floor(rnd() * 4);
  if (kind === 4)
    return `[${Array.from({ length: n }, () => rawValue(rnd, depth + 1, plain)).join(",")}]`;
  const body = Array.from({ length: n }, () => `${pick(keys)}:${rawValue(rnd, depth + 1, plain)}`);
  return `{${body.join(",")}}`;
}

function rawFrame(rnd: () => number): string {
  // Half the frames draw only from spellings without `\u`, so the fast path is in play.
  const plain = rnd() < 0.5;
  const keys = plain ? PLAIN_KEYS : [...PLAIN_KEYS, ...ESCAPED_KEYS];
  const members = Array.from({ length: Math.floor(rnd() * 5) }, () => {
    const key = keys[Math.floor(rnd() * keys.length)] as string;
    return `${space(rnd)}${key}${space(rnd)}:${space(rnd)}${rawValue(rnd, 0, plain)}${space(rnd)}`;
  });
  return `${space(rnd)}{${members.join(",")}}${space(rnd)}`;
}

test("random raw frames: the function agrees with a reference walker, fast path or not", () => {
  const rnd = mulberry32(0xfa57_7a7b);
  const tally = { fastNull: 0, scannedNull: 0, scannedRepeat: 0 };
  for (let i = 0; i < 1000; i++) {
    const text = rawFrame(rnd);
    const parsed = JSON.parse(text) as Record<string, unknown>;
    // The reference reads the same keys JSON.parse does.
    expect([...new Set(topLevelKeys(text))].sort()).toEqual(Object.keys(parsed).sort());
    const expected = referenceRepeat(text, NAMES);
    expect({ text, found: repeatedTopLevelKey(text, NAMES) }).toEqual({ text, found: expected });
    if (fastPathApplies(text)) {
      // Where the fast path answers, the exact answer is null: that is its whole claim.
      expect({ text, expected }).toEqual({ text, expected: null });
      tally.fastNull++;
    } else if (expected === null) tally.scannedNull++;
    else tally.scannedRepeat++;
  }
  // All three kinds of frame were met often enough to mean something.
  expect(tally.fastNull).toBeGreaterThan(100);
  expect(tally.scannedNull).toBeGreaterThan(100);
  expect(tally.scannedRepeat).toBeGreaterThan(100);
});

// ---- the parsers refuse the ambiguous frames ------------------------------------------

describe("parseDaemonFrame and parseServerFrame refuse a repeated routing field", () => {
  const refused = cases.filter(([, , expected]) => expected !== null);
  test.each(refused)("%s", (_name, text, key) => {
    for (const parse of [parseDaemonFrame, parseServerFrame, parseEnvelope]) {
      expect(parse(text)).toEqual({
        ok: false,
        error: {
          code: "badMessage",
          message: `duplicate field "${key}": a frame may name it only once`,
        },
      });
    }
  });

  test("the attack frame: another daemon's taskId first, one's own last", () => {
    const text = '{"type":"taskOutput","taskId":"theirs","output":"x","taskId":"mine"}';
    // JSON.parse alone would see only the last one.
    expect(JSON.parse(text).taskId).toBe("mine");
    expect(parseDaemonFrame(text)).toMatchObject({ ok: false, error: { code: "badMessage" } });
  });

  test("a server spawnTask naming two tasks is refused", () => {
    const text = '{"type":"spawnTask","taskId":"t1","taskName":"n","taskId":"t2"}';
    expect(parseServerFrame(text)).toMatchObject({ ok: false, error: { code: "badMessage" } });
  });

  const accepted = cases.filter(
    ([, text, expected]) => expected === null && text.includes('"type"'),
  );
  test.each(accepted)("accepted: %s", (_name, text) => {
    expect(parseEnvelope(text).ok).toBe(true);
  });
});
