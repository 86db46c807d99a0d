/**
 * The daemons that can take a task, as an indexed binary min-heap in the
 * order `before` gives (the registry passes the dispatch order, daemon.ts):
 * choosing one is O(1) and every change O(log n), so dispatch stays cheap with
 * ten thousand daemons connected (a scan per spawn cost ~110 µs there).
 * The heap knows nothing of daemons: DaemonRegistry, which makes every change
 * to what `before` reads, calls `update` or `remove` after each.
 */
export class DispatchHeap<T> {
  private readonly heap: T[] = [];
  private readonly index = new Map<T, number>();

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.heap.length;
  }

  peek(): T | undefined {
    return this.heap[0];
  }

  /** Inserts `d`, or moves it to its place after what `before` reads of it changed. */
  update(d: T): void {
    const i = this.index.get(d);
    if (i === undefined) {
      this.heap.push(d);
      this.index.set(d, this.heap.length - 1);
      this.up(this.heap.length - 1);
    } else {
      this.down(this.up(i));
    }
  }

  remove(d: T): void {
    const i = this.index.get(d);
    if (i !== undefined) this.removeAt(i);
  }

  private removeAt(i: number): void {
    const last = this.heap.pop() as T;
    this.index.delete(this.heap[i] ?? last);
    if (i === this.heap.length) return;
    this.heap[i] = last;
    this.index.set(last, i);
    this.down(this.up(i));
  }

  private up(i: number): number {
    const heap = this.heap;
    const d = heap[i] as T;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as T;
      if (!this.before(d, p)) break;
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
    const d = heap[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && this.before(heap[r] as T, heap[l] as T) ? r : l;
      const c = heap[child] as T;
      if (!this.before(c, d)) break;
      heap[i] = c;
      this.index.set(c, i);
      i = child;
    }
    heap[i] = d;
    this.index.set(d, i);
  }
}
