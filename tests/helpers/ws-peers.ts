/**
 * Peers for the upstream WebSocket client's tests: a Node.js child running a
 * script of tests/helpers (its first stdout line says where it listens, each
 * later line is a JSON event), an in-process Bun.serve WebSocket server that
 * takes the same commands and reports the same events, and a recorder of what
 * the client tells the upstream link.
 */
import type { Subprocess } from "bun";
import type { UpstreamHandlers } from "../../src/core/upstream-socket.ts";

export type PeerEvent = { event: string; id?: number; [field: string]: unknown };

/** Events as they come, and a wait for the first (from the start) that matches. */
export class EventLog {
  readonly events: PeerEvent[] = [];
  private waiters: Array<() => void> = [];

  add(event: PeerEvent): void {
    this.events.push(event);
    for (const wake of this.waiters.splice(0)) wake();
  }

  until(match: (e: PeerEvent) => boolean, timeoutMs = 5000): Promise<PeerEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching event; got ${JSON.stringify(this.events)}`)),
        timeoutMs,
      );
      const check = () => {
        const found = this.events.find(match);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else this.waiters.push(check);
      };
      check();
    });
  }
}

export interface NodePeer extends AsyncDisposable {
  /** The first line the script printed, parsed. */
  hello: Record<string, unknown>;
  log: EventLog;
  /** Everything the script printed to stderr so far. */
  stderr(): string;
  /** A line on its stdin (scripts that take commands). */
  tell(line: string): void;
}

/** Starts `node <script>` from tests/helpers; it exits when its stdin closes. */
export async function startNodeScript(script: string, args: string[] = []): Promise<NodePeer> {
  const proc: Subprocess<"pipe", "pipe", "pipe"> = Bun.spawn(
    ["node", `${import.meta.dir}/${script}`, ...args],
    { stdin: "pipe", stdout: "pipe", stderr: "pipe" },
  );
  const log = new EventLog();
  let errText = "";
  void (async () => {
    for await (const chunk of proc.stderr) errText += Buffer.from(chunk).toString();
  })();
  const first = Promise.withResolvers<Record<string, unknown>>();
  void (async () => {
    let pending = "";
    let seenFirst = false;
    for await (const chunk of proc.stdout) {
      pending += Buffer.from(chunk).toString();
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const line = JSON.parse(pending.slice(0, nl)) as PeerEvent;
        pending = pending.slice(nl + 1);
        if (seenFirst) log.add(line);
        else first.resolve(line);
        seenFirst = true;
        nl = pending.indexOf("\n");
      }
    }
    first.reject(new Error(`${script} exited before it listened: ${errText}`));
  })();
  const timer = setTimeout(() => first.reject(new Error(`${script} did not start`)), 10_000);
  const hello = await first.promise.finally(() => clearTimeout(timer));
  return {
    hello,
    log,
    stderr: () => errText,
    tell: (line) => {
      proc.stdin.write(`${line}\n`);
      proc.stdin.flush();
    },
    async [Symbol.asyncDispose]() {
      proc.stdin.end();
      const killer = setTimeout(() => proc.kill("SIGKILL"), 2000);
      await proc.exited;
      clearTimeout(killer);
    },
  };
}

/** A Bun.serve WebSocket server with the commands and events of ws-node-server.mjs (no "raw"). */
export function startBunPeer(): { port: number; log: EventLog } & Disposable {
  const log = new EventLog();
  let connections = 0;
  const server = Bun.serve<{ id: number }>({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req, s) =>
      !new URL(req.url).pathname.startsWith("/bad/") &&
      s.upgrade(req, { data: { id: ++connections } })
        ? undefined
        : new Response("WebSocket only", { status: 426 }),
    websocket: {
      maxPayloadLength: 64 * 1024 * 1024,
      open: (ws) => log.add({ event: "open", id: ws.data.id }),
      message(ws, message) {
        const text = String(message);
        log.add({ event: "message", id: ws.data.id, bytes: text.length, text: text.slice(0, 200) });
        const cmd = JSON.parse(text) as { do: string; text: string; data: string } & {
          code: number;
          reason: string;
          bytes: number;
        };
        if (cmd.do === "echo") ws.send(cmd.text);
        else if (cmd.do === "ping") ws.ping(cmd.data);
        else if (cmd.do === "close") ws.close(cmd.code, cmd.reason);
        else if (cmd.do === "big") ws.send("x".repeat(cmd.bytes));
      },
      pong: (ws, data) => log.add({ event: "pong", id: ws.data.id, data: data.toString() }),
      close: (ws, code, reason) => log.add({ event: "close", id: ws.data.id, code, reason }),
    },
  });
  return { port: server.port as number, log, [Symbol.dispose]: () => server.stop(true) };
}

/** What the client tells the link, in order, with waits for its open and its close. */
export function clientEvents() {
  const log: string[] = [];
  const messages: string[] = [];
  const opened = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<{ code: number; reason: string }>();
  const errors: string[] = [];
  const onMessage: Array<() => void> = [];
  const handlers: UpstreamHandlers = {
    onOpen: () => {
      log.push("open");
      opened.resolve();
    },
    onMessage: (text) => {
      log.push("message");
      messages.push(text);
      for (const wake of onMessage.splice(0)) wake();
    },
    onClose: (code, reason) => {
      log.push("close");
      closed.resolve({ code, reason });
    },
    onError: (message) => {
      log.push("error");
      errors.push(message);
    },
    onDrain: () => log.push("drain"),
  };
  const withTimeout = <T>(p: Promise<T>, what: string, ms = 5000): Promise<T> =>
    Promise.race([
      p,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`client never ${what}: ${log.join(", ")}`)), ms),
      ),
    ]);
  return {
    handlers,
    log,
    messages,
    errors,
    opened: () => withTimeout(opened.promise, "opened"),
    closed: () => withTimeout(closed.promise, "closed"),
    /** Waits until `n` messages have arrived. */
    messagesUntil(n: number, ms = 5000): Promise<string[]> {
      const arrived = new Promise<string[]>((resolve) => {
        const check = () => (messages.length >= n ? resolve(messages) : onMessage.push(check));
        check();
      });
      return withTimeout(arrived, `got ${n} messages`, ms);
    },
  };
}
