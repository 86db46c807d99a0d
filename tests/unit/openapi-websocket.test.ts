/**
 * The WebSocket part of the OpenAPI document is derived from the schemas the
 * parser checks: every frame is there, and the limits it shows are the ones
 * the parser applies.
 */
import { describe, expect, test } from "bun:test";
import { WS_SCHEMAS } from "../../src/http/openapi-websocket.ts";
import {
  CONTROL_COMMANDS,
  DAEMON_TO_RELAY,
  MAX_ERROR_CHARS,
  MAX_STATUS_CHARS,
  RELAY_TO_DAEMON,
} from "../../src/protocol/messages.ts";

type Schema = {
  properties: Record<string, Record<string, unknown>>;
  additionalProperties?: unknown;
  required?: string[];
};
const ws = (name: string) => WS_SCHEMAS[name] as unknown as Schema;

describe("WS_SCHEMAS from the protocol's schemas", () => {
  test("one schema per frame, open to fields the relay does not read", () => {
    const names = [...Object.keys(DAEMON_TO_RELAY), ...Object.keys(RELAY_TO_DAEMON)];
    expect(names.map((n) => [n, ws(`Ws${n}`)?.additionalProperties])).toEqual(
      names.map((n) => [n, true]),
    );
  });

  test("the caps parse.ts checks show as maxLength", () => {
    expect({
      oldStatus: ws("WsTaskStatusChange").properties.oldStatus?.maxLength,
      newStatus: ws("WsTaskStatusChange").properties.newStatus?.maxLength,
      error: ws("WsTaskComplete").properties.error,
    }).toEqual({
      oldStatus: MAX_STATUS_CHARS,
      newStatus: MAX_STATUS_CHARS,
      error: { type: ["string", "null"], maxLength: MAX_ERROR_CHARS, description: "Why it failed" },
    });
  });

  test("unions of constants are enums; no TypeBox internals leak", () => {
    expect(ws("WsControlCommand").properties.type).toEqual({
      type: "string",
      enum: [...CONTROL_COMMANDS],
    });
    expect(JSON.stringify(WS_SCHEMAS)).not.toMatch(/anyOf|maxChars/);
  });
});
