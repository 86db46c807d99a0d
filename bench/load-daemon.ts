/**
 * A daemon as light as the protocol allows, for the load processes: one
 * WebSocket, no frame log (SimDaemon keeps every frame it receives, which a
 * long run or 10,000 connections cannot afford), and at most one JSON.parse
 * per received frame. It speaks the same protocol as src/sim/daemon.ts.
 */
import { daemonUrl } from "../src/sim/daemon.ts";

export interface LoadDaemonOptions {
  url: string;
  apiKey: string;
  machineId: string;
  capacity: number;
  autoComplete: boolean;
}

export class LoadDaemon {
  readonly ws: WebSocket;
  /** Tasks received and not completed (stream scenarios hold one). */
  readonly tasks: string[] = [];
  readonly authenticated: Promise<void>;
  spawns = 0;
  completes = 0;
  readonly errors = new Map<string, number>();
  closeCode: number | null = null;

  constructor(readonly opts: LoadDaemonOptions) {
    const auth = Promise.withResolvers<void>();
    this.authenticated = auth.promise;
    this.authenticated.catch(() => {});
    this.ws = new WebSocket(daemonUrl(opts.url));
    this.ws.onopen = () => {
      this.ws.send(
        JSON.stringify({
          type: "authenticate",
          apiKey: opts.apiKey,
          machineId: opts.machineId,
          hostname: `${opts.machineId}.bench`,
          maxConcurrentTasks: opts.capacity,
        }),
      );
    };
    this.ws.onmessage = (ev) => {
      const msg = parse(ev.data);
      if (msg?.type === "authenticated") auth.resolve();
      else if (msg?.type === "spawnTask") this.#onSpawn(msg.taskId);
      else if (msg?.type === "error") {
        const code = String(msg.code);
        this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
      }
    };
    this.ws.onclose = (ev) => {
      this.closeCode = ev.code;
      auth.reject(new Error(`closed (${ev.code} ${ev.reason}) before authenticated`));
    };
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(text: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  #onSpawn(taskId: unknown): void {
    if (typeof taskId !== "string") return;
    this.spawns++;
    if (!this.opts.autoComplete) {
      this.tasks.push(taskId);
      return;
    }
    this.completes++;
    this.send(`{"type":"taskComplete","taskId":${JSON.stringify(taskId)},"success":true}`);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON objects.
function parse(data: unknown): any {
  if (typeof data !== "string") return undefined;
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
