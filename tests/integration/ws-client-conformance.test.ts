/**
 * The upstream WebSocket client (upstream-batched-socket.ts) against servers it
 * was not written with: Bun.serve's WebSocket server, and the `ws` package's
 * server under Node.js (tests/helpers/ws-node-server.mjs). Both carry the
 * ordinary exchanges (messages of every length class, ping/pong, the close
 * handshake either way, the message size bound); the ws server also writes
 * frames no correct server sends, to check that the client fails the
 * connection as RFC 6455 says (§5.1 masking, §5.2 reserved bits and opcodes,
 * §5.5 control frames, §7.4 close codes, §8.1 UTF-8), with the close code the
 * server then reads; and it answers opening handshakes wrongly (§4.1).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createBatchedUpstreamTransport } from "../../src/transport/upstream-batched-socket.ts";
import {
  clientEvents,
  type EventLog,
  type NodePeer,
  startBunPeer,
  startNodeScript,
} from "../helpers/ws-peers.ts";

const MAX = 256 * 1024;
const transport = createBatchedUpstreamTransport({ maxMessageBytes: MAX });

let node: NodePeer;
beforeAll(async () => {
  node = await startNodeScript("ws-node-server.mjs");
});
afterAll(async () => {
  await node[Symbol.asyncDispose]();
});

const bun = startBunPeer();
afterAll(() => bun[Symbol.dispose]());

interface Peer {
  name: string;
  url(path?: string): string;
  log(): EventLog;
}

const peers: Peer[] = [
  {
    name: "Bun.serve",
    url: (p = "/ws/daemon") => `ws://127.0.0.1:${bun.port}${p}`,
    log: () => bun.log,
  },
  {
    name: "ws on Node.js",
    url: (p = "/ws/daemon") => `ws://127.0.0.1:${node.hello.port}${p}`,
    log: () => node.log,
  },
];

/** Opens a client and learns the server's id for it (from its first message). */
async function connect(peer: Peer) {
  const client = clientEvents();
  const socket = transport(peer.url(), client.handlers);
  await client.opened();
  const tag = `hello ${Math.random()}`;
  socket.send(JSON.stringify({ do: "echo", text: tag }));
  const seen = await peer
    .log()
    .until((e) => e.event === "message" && e.text?.toString().includes(tag) === true);
  await client.messagesUntil(1);
  client.messages.length = 0;
  const id = seen.id as number;
  const serverClose = () => peer.log().until((e) => e.event === "close" && e.id === id);
  const command = (cmd: object) => socket.send(JSON.stringify(cmd));
  return { client, socket, id, serverClose, command };
}

describe.each(peers)("against $name", (peer) => {
  test("messages of every length class and of multi-byte text arrive whole, in order", async () => {
    const { client, socket, command } = await connect(peer);
    const texts = [0, 1, 125, 126, 65_535, 65_536, 200_000].map((n) => "a".repeat(n));
    texts.push("é✓😀".repeat(1000));
    for (const text of texts) command({ do: "echo", text });
    expect(await client.messagesUntil(texts.length)).toEqual(texts);
    socket.close(1000, "done");
  });

  test("a ping is answered with a pong carrying its data", async () => {
    const { socket, id, command } = await connect(peer);
    command({ do: "ping", data: "are you there" });
    const pong = await peer.log().until((e) => e.event === "pong" && e.id === id);
    expect(pong.data).toBe("are you there");
    socket.close(1000, "done");
  });

  test("the server's close: the client reports its code and reason and echoes the code", async () => {
    const { client, socket, command, serverClose } = await connect(peer);
    command({ do: "close", code: 4001, reason: "server says bye" });
    expect(await client.closed()).toEqual({ code: 4001, reason: "server says bye" });
    expect((await serverClose()).code).toBe(4001);
    expect(socket.send("too late")).toBe("dropped");
    expect(client.errors).toEqual([]);
  });

  test("the client's close reaches the server with its code and reason", async () => {
    const { client, socket, serverClose } = await connect(peer);
    socket.close(4002, "client says bye");
    expect(await client.closed()).toEqual({ code: 4002, reason: "client says bye" });
    const closed = await serverClose();
    expect([closed.code, closed.reason]).toEqual([4002, "client says bye"]);
  });

  test("a message over the bound fails the connection with 1009", async () => {
    const { client, command, serverClose } = await connect(peer);
    command({ do: "big", bytes: MAX + 1 });
    expect((await client.closed()).code).toBe(1009);
    expect(client.messages).toEqual([]);
    expect(client.errors.join()).toContain("too large");
    expect((await serverClose()).code).toBe(1009);
  });

  test("a message at the bound is accepted", async () => {
    const { client, socket, command } = await connect(peer);
    command({ do: "big", bytes: MAX });
    expect((await client.messagesUntil(1))[0]?.length).toBe(MAX);
    socket.close(1000, "done");
  });

  test("a path the server does not upgrade fails the handshake", async () => {
    const client = clientEvents();
    transport(peer.url("/bad/unknown"), client.handlers);
    const closed = await client.closed();
    expect([closed.code, client.log.includes("open")]).toEqual([1006, false]);
    expect(client.errors.join()).toMatch(/handshake failed: server answered "HTTP\/1.1 (426|404)/);
  });
});

/** An unmasked server frame as hex, with the given first-byte flags. */
function frame(
  opcode: number,
  payload: Buffer,
  opts: { fin?: boolean; rsv?: number; mask?: boolean } = {},
): string {
  const n = payload.length;
  const length = n < 126 ? [n] : n < 65_536 ? [126, n >> 8, n & 0xff] : null;
  if (!length) throw new Error("test frames stay under 64 KiB");
  const b0 = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  const mask = opts.mask ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0);
  const body = opts.mask ? payload.map((b, i) => b ^ (mask[i & 3] as number)) : payload;
  length[0] = (length[0] as number) | (opts.mask ? 0x80 : 0);
  return Buffer.concat([Buffer.from([b0, ...length]), mask, body]).toString("hex");
}

const text = (s: string) => Buffer.from(s);
const closePayload = (code: number, reason = "") =>
  Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]);

describe("frames no server may send (raw bytes from the ws server's socket)", () => {
  const nodePeer = peers[1] as Peer;
  const cases: Array<[string, string, number]> = [
    ["RSV1 set (no extension negotiated)", frame(1, text("x"), { rsv: 4 }), 1002],
    ["RSV2 and RSV3 set", frame(1, text("x"), { rsv: 3 }), 1002],
    ["a masked frame", frame(1, text("masked"), { mask: true }), 1002],
    ["a ping of 126 bytes", frame(9, Buffer.alloc(126)), 1002],
    ["a fragmented ping", frame(9, text("p"), { fin: false }) + frame(0, text("q")), 1002],
    ["a close of 126 bytes", frame(8, closePayload(1000, "r".repeat(124))), 1002],
    ["an unknown opcode", frame(3, text("x")), 1002],
    ["a continuation with no message", frame(0, text("x")), 1002],
    [
      "a new message inside a fragmented one",
      frame(1, text("a"), { fin: false }) + frame(1, text("b")),
      1002,
    ],
    ["text that is not UTF-8", frame(1, Buffer.from([0x68, 0xc3, 0x28])), 1007],
    [
      "a fragmented text whose UTF-8 is cut wrongly",
      frame(1, Buffer.from([0xe2, 0x82]), { fin: false }) + frame(0, Buffer.from([0x41])),
      1007,
    ],
    [
      "a close reason that is not UTF-8",
      frame(8, Buffer.concat([closePayload(1000), Buffer.from([0xff])])),
      1007,
    ],
    ["a close code no one may send (1005)", frame(8, closePayload(1005)), 1002],
    ["a close code out of range (999)", frame(8, closePayload(999)), 1002],
    ["a close of one byte", frame(8, Buffer.from([3])), 1002],
    [
      "fragments over the bound together",
      frame(1, Buffer.alloc(60_000, 0x61), { fin: false }) +
        frame(0, Buffer.alloc(60_000, 0x61), { fin: false }) +
        frame(0, Buffer.alloc(60_000, 0x61), { fin: false }) +
        frame(0, Buffer.alloc(60_000, 0x61), { fin: false }) +
        frame(0, Buffer.alloc(60_000, 0x61)),
      1009,
    ],
  ];

  test.each(cases)(
    "%s: the client fails the connection with the right code",
    async (_name, hex, code) => {
      const { client, command, serverClose } = await connect(nodePeer);
      command({ do: "raw", hex });
      const closed = await client.closed();
      expect([closed.code, client.messages.length]).toEqual([code, 0]);
      expect(client.errors.join()).toContain("protocol error from the server");
      expect((await serverClose()).code).toBe(code);
    },
  );

  test("fragments under the bound, with a ping between them, make one message", async () => {
    const { client, socket, command, id } = await connect(nodePeer);
    command({ do: "fragments", parts: ["frag", "men", "ted é"] });
    command({
      do: "raw",
      hex:
        frame(1, text("raw "), { fin: false }) +
        frame(9, text("mid")) +
        frame(0, text("fragments")),
    });
    expect(await client.messagesUntil(2)).toEqual(["fragmented é", "raw fragments"]);
    const pong = await nodePeer.log().until((e) => e.event === "pong" && e.id === id);
    expect(pong.data).toBe("mid");
    socket.close(1000, "done");
  });

  test("an empty close frame ends the connection with 1005 echoed as 1000", async () => {
    const { client, command, serverClose } = await connect(nodePeer);
    command({ do: "raw", hex: frame(8, Buffer.alloc(0)) });
    expect((await client.closed()).code).toBe(1000);
    expect((await serverClose()).code).toBe(1000);
  });
});

describe("opening handshakes the client refuses (RFC 6455 §4.1)", () => {
  test.each([
    ["status200", "HTTP/1.1 200 OK"],
    ["redirect", "HTTP/1.1 302 Found"],
    ["http10", "HTTP/1.0 101"],
    ["noAccept", "wrong Sec-WebSocket-Accept"],
    ["wrongAccept", "wrong Sec-WebSocket-Accept"],
    ["noUpgrade", "no Upgrade: websocket"],
    ["extension", "an extension the client did not ask for"],
  ])("%s", async (kind, why) => {
    const client = clientEvents();
    transport(`ws://127.0.0.1:${node.hello.port}/bad/${kind}`, client.handlers);
    const closed = await client.closed();
    expect([closed.code, client.log.includes("open")]).toEqual([1006, false]);
    expect(client.errors.join()).toContain("handshake failed");
    expect(client.errors.join()).toContain(why);
  });
});
