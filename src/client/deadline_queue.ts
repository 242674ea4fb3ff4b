/**
 * Pending items ordered by deadline (an indexed binary min-heap), so a transport arms one timer
 * for its earliest deadline instead of one timer per request, and forgets a request in
 * O(log n) when it is answered.
 *
 * Invariants: every entry's deadline is at most its children's; `entry.index` is its position
 * in the heap while it is held, and -1 once popped or removed.
 */

/** A handle to an item held by a `DeadlineQueue`. */
export interface DeadlineEntry<T> {
  readonly deadlineMs: number;
  readonly item: T;
  /** Position in the heap; -1 when no longer held. */
  index: number;
}

/** A min-heap of items keyed by deadline (ms). */
export class DeadlineQueue<T> {
  readonly #heap: DeadlineEntry<T>[] = [];

  /** Items held. */
  get size(): number {
    return this.#heap.length;
  }

  /** Adds `item` due at `deadlineMs`; the handle removes it early. */
  push(deadlineMs: number, item: T): DeadlineEntry<T> {
    const entry: DeadlineEntry<T> = { deadlineMs, item, index: this.#heap.length };
    this.#heap.push(entry);
    this.#siftUp(entry.index);
    return entry;
  }

  /** Removes `entry` if still held (a no-op otherwise). */
  remove(entry: DeadlineEntry<T>): void {
    const index = entry.index;
    if (index < 0) return;
    if (this.#heap[index] !== entry) throw new Error("DeadlineQueue: entry of another queue");
    entry.index = -1;
    const last = this.#heap.pop()!;
    if (last === entry) return;
    this.#heap[index] = last;
    last.index = index;
    this.#siftDown(index);
    this.#siftUp(last.index);
  }

  /** The earliest deadline held, or null when empty. */
  peekDeadline(): number | null {
    return this.#heap[0]?.deadlineMs ?? null;
  }

  /** Removes and returns every item due at or before `nowMs`, earliest first. */
  popDue(nowMs: number): T[] {
    const due: T[] = [];
    while (this.#heap.length > 0 && this.#heap[0]!.deadlineMs <= nowMs) {
      const top = this.#heap[0]!;
      this.remove(top);
      due.push(top.item);
    }
    return due;
  }

  /** Removes and returns every item. */
  clear(): T[] {
    const entries = this.#heap.splice(0);
    for (const entry of entries) entry.index = -1;
    return entries.map((entry) => entry.item);
  }

  #swap(i: number, j: number): void {
    const a = this.#heap[i]!;
    const b = this.#heap[j]!;
    this.#heap[i] = b;
    this.#heap[j] = a;
    a.index = j;
    b.index = i;
  }

  #siftUp(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#heap[parent]!.deadlineMs <= this.#heap[i]!.deadlineMs) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #siftDown(index: number): void {
    const heap = this.#heap;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && heap[left]!.deadlineMs < heap[smallest]!.deadlineMs) {
        smallest = left;
      }
      if (right < heap.length && heap[right]!.deadlineMs < heap[smallest]!.deadlineMs) {
        smallest = right;
      }
      if (smallest === i) return;
      this.#swap(i, smallest);
      i = smallest;
    }
  }
}
