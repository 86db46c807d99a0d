/**
 * Requests written by hand on a raw socket, the way a scanner or a broken
 * client sends them: no Host, an unusable Host, a garbage request target, an
 * absolute-form URL. Each answer is either a JSON 4xx from the relay or Bun's
 * own bare 4xx/505 and a close (when Bun rejects the request before any
 * handler); never Bun's error page, never the token, the working directory or
 * a stack. The relay keeps serving afterwards, and nothing reaches stderr.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as connectTcp, type Socket } from "node:net";
import { join } from "node:path";
import { connect as connectTls } from "node:tls";
import { connectSimDaemon } from "../../src/sim/index.ts";
import { startSocketServer } from "../../src/transport/relay-socket-server.ts";
import { freePort, REPO_ROOT, spawnRelayBinary } from "../helpers/binary.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";
import { makeCertificates, type TestCertificates } from "../helpers/tls.ts";

const TOKEN = "admin-token-0123456789abcdef";
const RAW_WAIT_MS = 5000;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The whole answer as received, status line included. */
  text: string;
}

/** One answer to `request`, parsed once its body is complete (Content-Length) or the peer closed. */
function rawRequest(port: number, request: string, tls?: { ca: string }): Promise<RawAnswer> {
  const { promise, resolve, reject } = Promise.withResolvers<RawAnswer>();
  const socket: Socket = tls
    ? connectTls({ host: "127.0.0.1", port, ca: tls.ca, servername: "localhost" })
    : connectTcp({ host: "127.0.0.1", port });
  let received = "";
  const timer = setTimeout(() => {
    socket.destroy();
    reject(
      new Error(`no complete answer within ${RAW_WAIT_MS} ms; got ${JSON.stringify(received)}`),
    );
  }, RAW_WAIT_MS);
  const finish = (closed: boolean): void => {
    const answer = parseAnswer(received, closed);
    if (!answer) return;
    clearTimeout(timer);
    socket.destroy();
    resolve(answer);
  };
  socket.on(tls ? "secureConnect" : "connect", () => socket.write(request));
  socket.on("data", (chunk) => {
    received += chunk.toString("latin1");
    finish(false);
  });
  socket.on("close", () => finish(true));
  socket.on("error", () => {});
  return promise;
}

function parseAnswer(text: string, closed: boolean): RawAnswer | null {
  const end = text.indexOf("\r\n\r\n");
  if (end === -1) {
    if (closed) throw new Error(`closed without an answer; got ${JSON.stringify(text)}`);
    return null;
  }
  const [statusLine = "", ...lines] = text.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = text.slice(end + 4);
  const length = headers["content-length"];
  if (length !== undefined ? body.length < Number(length) : !closed) return null;
  return { status: Number(statusLine.split(" ")[1]), headers, body, text };
}

/** What must never be in an answer or a log line. */
function expectNothingLeaked(text: string, relayDir: string): void {
  expect(text).not.toContain(TOKEN);
  expect(text).not.toContain(process.cwd());
  expect(text).not.toContain(REPO_ROOT);
  expect(text).not.toContain(relayDir);
  expect(text).not.toContain("relay-socket-server");
  expect(text).not.toMatch(/\n\s*at /);
  expect(text.toLowerCase()).not.toContain("<html");
  expect(text.toLowerCase()).not.toContain("<!doctype");
}

const NO_VALID_HOST = { error: "bad request: the request needs a valid Host header" };
const WS_HEADERS =
  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/** The relay answered: JSON, with this status and body. */
type Expected = { json: number; body: Record<string, unknown> } | { bunRejects: 400 | 505 };

/** [name, request (`PORT` is replaced by the relay's port), expected answer]. */
const cases: Array<[string, string, Expected]> = [
  [
    "HTTP/1.0 without Host, the dashboard with the admin token",
    `GET /dashboard?token=${TOKEN} HTTP/1.0\r\n\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.0 without Host, /health",
    "GET /health HTTP/1.0\r\n\r\n",
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.0 without Host, /status with the token as a bearer",
    `GET /status HTTP/1.0\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.0 without Host, a write route",
    `POST /reconnect?token=${TOKEN} HTTP/1.0\r\nContent-Length: 0\r\n\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.0 without Host, a WebSocket upgrade at /ws/daemon",
    `GET /ws/daemon?token=${TOKEN} HTTP/1.0\r\n${WS_HEADERS}\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.0 without Host, absolute-form URL",
    `GET http://evil.example/dashboard?token=${TOKEN} HTTP/1.0\r\n\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.1 with an empty Host",
    `GET /dashboard?token=${TOKEN} HTTP/1.1\r\nHost: \r\n\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.1 with a space in Host",
    `GET /dashboard?token=${TOKEN} HTTP/1.1\r\nHost: a b\r\n\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.1 with an unclosed IPv6 Host",
    `GET /ws/daemon HTTP/1.1\r\nHost: [::1\r\n${WS_HEADERS}\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.1 with a Host port that is not a number",
    `GET /health HTTP/1.1\r\nHost: localhost:${TOKEN}\r\n\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  [
    "HTTP/1.1 with a path in Host",
    `GET /status HTTP/1.1\r\nHost: localhost/${TOKEN}\r\n\r\n`,
    { json: 400, body: NO_VALID_HOST },
  ],
  // The router would read the path at the wrong place; `/health/` would reach `/` past the guard.
  [
    "a one-letter Host",
    "GET /health/ HTTP/1.1\r\nHost: x\r\n\r\n",
    { json: 400, body: { error: "bad request: the Host header is too short" } },
  ],
  [
    "a two-letter Host",
    "GET /ready/ HTTP/1.1\r\nHost: ab\r\n\r\n",
    { json: 400, body: { error: "bad request: the Host header is too short" } },
  ],
  [
    "a four-letter Host is routed as usual",
    "GET /health HTTP/1.1\r\nHost: abcd\r\n\r\n",
    { json: 200, body: { healthy: true } },
  ],
  // Bun refuses these itself, before any handler runs: a bare status line, then a close.
  [
    "HTTP/1.1 without Host (RFC 9112 §3.2), the dashboard with the admin token",
    `GET /dashboard?token=${TOKEN} HTTP/1.1\r\n\r\n`,
    { bunRejects: 400 },
  ],
  [
    "HTTP/1.1 without Host, a WebSocket upgrade at /ws/daemon",
    `GET /ws/daemon HTTP/1.1\r\n${WS_HEADERS}\r\n`,
    { bunRejects: 400 },
  ],
  [
    "a garbage request target",
    "GET garbage HTTP/1.1\r\nHost: localhost\r\n\r\n",
    { bunRejects: 400 },
  ],
  ["an asterisk request target", "GET * HTTP/1.1\r\nHost: localhost\r\n\r\n", { bunRejects: 400 }],
  ["a request line that is one word", "HELLO\r\n\r\n", { bunRejects: 400 }],
  [
    "a space inside the request target",
    `GET /dashboard?token=${TOKEN} x HTTP/1.1\r\nHost: localhost\r\n\r\n`,
    { bunRejects: 505 },
  ],
  // Bun reads the absolute form's path and takes the authority from Host, as for origin form.
  [
    "absolute-form URL with a Host: answered as its path",
    "GET http://evil.example/health HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: close\r\n\r\n",
    { json: 200, body: { healthy: true } },
  ],
];

interface Setup {
  name: string;
  env: Record<string, string>;
  tls: boolean;
}

const setups: Setup[] = [
  { name: "plain HTTP", env: {}, tls: false },
  { name: "with protected reads", env: { MAKIMA_RELAY_PROTECT_READS: "true" }, tls: false },
  { name: "over TLS with protected reads", env: { MAKIMA_RELAY_PROTECT_READS: "true" }, tls: true },
];

describe.each(setups)("$name", ({ env, tls }) => {
  let relay: TestRelay;
  let certs: TestCertificates | undefined;
  const send = (request: string) =>
    rawRequest(relay.port, request.replace("PORT", String(relay.port)), certs && { ca: certs.ca });

  beforeAll(async () => {
    certs = tls ? makeCertificates() : undefined;
    relay = await startTestRelay({
      env: {
        MAKIMA_RELAY_ADMIN_TOKEN: TOKEN,
        ...env,
        ...(certs
          ? { MAKIMA_RELAY_TLS_CERT: certs.certFile, MAKIMA_RELAY_TLS_KEY: certs.keyFile }
          : {}),
      },
    });
  });

  afterAll(async () => {
    await relay[Symbol.asyncDispose]();
  });

  test.each(cases)("%s", async (_name, request, expected) => {
    const answer = await send(request);
    expectNothingLeaked(answer.text, relay.dir);
    if ("bunRejects" in expected) {
      expect({ status: answer.status, headers: answer.headers, body: answer.body }).toEqual({
        status: expected.bunRejects,
        headers: { connection: "close" },
        body: "",
      });
    } else {
      expect(answer.status).toBe(expected.json);
      expect(answer.headers["content-type"]).toStartWith("application/json");
      expect(JSON.parse(answer.body)).toMatchObject(expected.body);
    }
  });

  test("afterwards: no log line holds the token, /health answers and a daemon authenticates", async () => {
    for (const [, request] of cases) await send(request);
    const lines = relay.logs.items.map((l) => JSON.stringify(l));
    for (const line of lines) expectNothingLeaked(line, "\0");
    expect(relay.logs.items.filter((l) => l.level === "error")).toEqual([]);

    const health = await fetch(`${relay.url}/health`, certs ? { tls: { ca: certs.ca } } : {});
    expect(health.status).toBe(200);
    await using daemon = await connectSimDaemon({
      url: relay.daemonUrl.replace("ws://", certs ? "wss://" : "ws://"),
      apiKey: TEST_KEY,
      machineId: "after-malformed",
      ...(certs ? { tls: { ca: certs.ca } } : {}),
    });
    expect(await daemon.authenticated).toBeString();
  });
});

describe("a bug while answering a request", () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ env: { MAKIMA_RELAY_ADMIN_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    await relay[Symbol.asyncDispose]();
  });

  const failures: Array<[string, () => Response | Promise<Response>]> = [
    [
      "a throw",
      () => {
        throw new Error(`bug while reading ?token=${TOKEN}`);
      },
    ],
    ["a rejection", () => Promise.reject(new Error(`bug while reading ?token=${TOKEN}`))],
  ];

  test.each(failures)("%s is a JSON 500, reported through the masking logger", async (_n, fail) => {
    const reported = Promise.withResolvers<[string, unknown]>();
    // The relay's own core and logger; only the HTTP app is replaced by one that fails.
    using server = startSocketServer({
      host: "127.0.0.1",
      port: 0,
      maxFrameBytes: 1024,
      relay: relay.relay,
      fetch: fail,
      onBug: (where, err) => {
        relay.log.log("error", "internal_error", { where, error: String(err) });
        reported.resolve([where, err]);
      },
      newId: () => crypto.randomUUID(),
    });
    const answer = await rawRequest(
      server.port as number,
      `GET /status?token=${TOKEN} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    );
    expectNothingLeaked(answer.text, relay.dir);
    expect([answer.status, answer.headers["content-type"], answer.body]).toEqual([
      500,
      "application/json",
      '{"error":"Internal error"}',
    ]);
    const [where, err] = await reported.promise;
    expect([where, String(err)]).toEqual([
      "http request",
      `Error: bug while reading ?token=${TOKEN}`,
    ]);
    const line = await relay.logs.waitFor((l) => l.event === "internal_error");
    expect(line).toMatchObject({
      where: "http request",
      error: "Error: bug while reading ?token=[redacted]",
    });
  });
});

test("the relay process writes no stack and no token to stderr", async () => {
  const port = await freePort();
  await using proc = spawnRelayBinary({
    binary: process.execPath,
    args: [join(REPO_ROOT, "src/main.ts")],
    env: {
      MAKIMA_RELAY_PORT: String(port),
      MAKIMA_RELAY_HOST: "127.0.0.1",
      MAKIMA_RELAY_ADMIN_TOKEN: TOKEN,
      MAKIMA_API_KEY: TEST_KEY,
    },
  });
  await proc.waitForHttp("/health", 10_000);
  for (const [, request] of cases) {
    const answer = await rawRequest(port, request.replace("PORT", String(port)));
    expectNothingLeaked(answer.text, proc.cwd);
  }
  proc.kill("SIGTERM");
  // stdout and stderr are read to their end before `exited` resolves.
  expect(await proc.exited).toBe(0);
  expect(proc.stderrLines).toEqual([]);
  for (const line of proc.stdoutLines) expectNothingLeaked(line, "\0");
});
