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
