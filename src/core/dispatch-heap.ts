import type { Daemon } from "./daemon-registry.ts";

/** The dispatch order of docs/protocol.md: fewer active tasks first, then the one that waited longest. */
const before = (a: Daemon, b: Daemon): boolean =>
  a.tasks.size < b.tasks.size || (a.tasks.size === b.tasks.size && a.turn < b.turn);

/** May `d` take a task now? */
export const canTakeTask = (d: Daemon): boolean =>
  !d.backpressured && !d.retired && d.tasks.size < d.capacity;

/**
 * The daemons that can take a task, as a binary min-heap in dispatch order:
 * choosing one is O(1) and every change O(log n), so dispatch stays cheap with
 * ten thousand daemons connected (a scan per spawn cost ~110 µs there).
 * Whoever changes a daemon's load, turn, capacity or backpressure calls
 * `update` (DaemonRegistry.changed).
 */
export class DispatchHeap {
  private readonly heap: Daemon[] = [];
  private readonly index = new Map<Daemon, number>();

  get size(): number {
    return this.heap.length;
  }

  peek(): Daemon | undefined {
    return this.heap[0];
  }

  update(d: Daemon): void {
    const i = this.index.get(d);
    if (!canTakeTask(d)) {
      if (i !== undefined) this.removeAt(i);
      return;
    }
    if (i === undefined) {
      this.heap.push(d);
      this.index.set(d, this.heap.length - 1);
      this.up(this.heap.length - 1);
    } else {
      this.down(this.up(i));
    }
  }

  remove(d: Daemon): void {
    const i = this.index.get(d);
    if (i !== undefined) this.removeAt(i);
  }

  private removeAt(i: number): void {
    const last = this.heap.pop() as Daemon;
    this.index.delete(this.heap[i] ?? last);
    if (i === this.heap.length) return;
    this.heap[i] = last;
    this.index.set(last, i);
    this.down(this.up(i));
  }

  private up(i: number): number {
    const heap = this.heap;
    const d = heap[i] as Daemon;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Daemon;
      if (!before(d, p)) break;
      heap[i] = p;
      this.index.set(p, i);
      i = parent;
    }
    heap[i] = d;
    this.index.set(d, i);
    return i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const d = heap[i] as Daemon;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && before(heap[r] as Daemon, heap[l] as Daemon) ? r : l;
      const c = heap[child] as Daemon;
      if (!before(c, d)) break;
      heap[i] = c;
      this.index.set(c, i);
      i = child;
    }
    heap[i] = d;
    this.index.set(d, i);
  }
}
