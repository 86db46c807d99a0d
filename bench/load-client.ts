/** The bench's handle on one load process: send a command, await its reply. */
import { join } from "node:path";
import type {
  AwaitTasksCommand,
  ConnectCommand,
  ConnectResult,
  HeartbeatsCommand,
  LoadReply,
  LoadStats,
  StreamCommand,
  StreamResult,
} from "./load-protocol.ts";
import { cpuTimeMs, type Memory, memoryOf, trackChild } from "./proc.ts";
import { readLines } from "./relay-process.ts";

const LOAD_ENTRY = join(import.meta.dir, "load.ts");
/** Headroom over a command's own timeout before the bench gives up on the process. */
const REPLY_SLACK_MS = 10_000;
const EXIT_WAIT_MS = 5_000;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class LoadProcess implements AsyncDisposable {
  readonly #proc: Bun.Subprocess<"pipe", "pipe", "pipe">;
  readonly #pending = new Map<number, Pending>();
  readonly #stderr: string[] = [];
  #nextId = 1;
  #closed: Promise<void> | undefined;

  constructor(readonly label: string) {
    this.#proc = Bun.spawn([process.execPath, LOAD_ENTRY], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
    });
    trackChild(this.#proc);
    readLines(this.#proc.stdout, (line) => this.#onLine(line)).catch(() => {});
    readLines(this.#proc.stderr, (line) => {
      this.#stderr.push(line);
      if (this.#stderr.length > 40) this.#stderr.shift();
    }).catch(() => {});
    this.#proc.exited.then((code) => {
      for (const p of this.#pending.values()) {
        p.reject(new Error(`load process ${label} exited (${code})\n${this.#stderr.join("\n")}`));
      }
      this.#pending.clear();
    });
  }

  get pid(): number {
    return this.#proc.pid;
  }

  cpuMs(): number {
    return cpuTimeMs(this.#proc.pid);
  }

  memory(): Memory {
    return memoryOf(this.#proc.pid);
  }

  connect(cmd: Omit<ConnectCommand, "cmd">): Promise<ConnectResult> {
    return this.#request({ cmd: "connect", ...cmd }, cmd.timeoutMs);
  }

  awaitTasks(cmd: Omit<AwaitTasksCommand, "cmd">): Promise<{ ready: number; missing: number }> {
    return this.#request({ cmd: "awaitTasks", ...cmd }, cmd.timeoutMs);
  }

  stream(cmd: Omit<StreamCommand, "cmd">): Promise<StreamResult> {
    return this.#request({ cmd: "stream", ...cmd }, cmd.timeoutMs);
  }

  heartbeats(cmd: Omit<HeartbeatsCommand, "cmd">): Promise<unknown> {
    return this.#request({ cmd: "heartbeats", ...cmd }, 0);
  }

  stats(): Promise<LoadStats> {
    return this.#request({ cmd: "stats" }, 0);
  }

  /** Closes the daemons (close 1000) and waits for the process to exit; SIGKILL after 5 s. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#proc.exitCode === null) {
        await this.#request({ cmd: "close" }, 0).catch(() => {});
      }
      const timer = setTimeout(() => this.#proc.kill("SIGKILL"), EXIT_WAIT_MS);
      await this.#proc.exited;
      clearTimeout(timer);
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #request<T>(cmd: object, timeoutMs: number): Promise<T> {
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const timer = setTimeout(() => {
      this.#pending.delete(id);
      reject(new Error(`load process ${this.label}: no reply to ${JSON.stringify(cmd)}`));
    }, timeoutMs + REPLY_SLACK_MS);
    this.#pending.set(id, {
      resolve: (v) => {
        clearTimeout(timer);
        resolve(v as T);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
    this.#proc.stdin.write(`${JSON.stringify({ id, ...cmd })}\n`);
    this.#proc.stdin.flush();
    return promise;
  }

  #onLine(line: string): void {
    let reply: LoadReply;
    try {
      reply = JSON.parse(line) as LoadReply;
    } catch {
      this.#stderr.push(`[stdout] ${line}`);
      return;
    }
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (reply.ok) pending.resolve(reply.result);
    else pending.reject(new Error(`load process ${this.label}: ${reply.error}`));
  }
}
