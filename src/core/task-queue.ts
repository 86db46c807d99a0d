/**
 * FIFO of pending task ids. A Map keeps insertion order and deletes in O(1),
 * so cancelling a queued task does not scan the queue.
 */
export class TaskQueue {
  private readonly items = new Map<string, true>();

  get size(): number {
    return this.items.size;
  }

  push(taskId: string): void {
    this.items.set(taskId, true);
  }

  shift(): string | undefined {
    const first = this.items.keys().next();
    if (first.done) return undefined;
    this.items.delete(first.value);
    return first.value;
  }

  delete(taskId: string): boolean {
    return this.items.delete(taskId);
  }

  has(taskId: string): boolean {
    return this.items.has(taskId);
  }

  ids(): string[] {
    return [...this.items.keys()];
  }
}
