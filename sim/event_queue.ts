/**
 * A priority queue of simulation events ordered by (time, sequence number).
 *
 * Invariant: events at the same simulated time run in the order they were scheduled, so the
 * order never depends on anything but the seed. Bounded by `MAX_QUEUED_EVENTS`.
 *
 * @module
 */

/** Most events the queue may hold; exceeding it is a simulator bug (a runaway loop). */
export const MAX_QUEUED_EVENTS = 1_000_000;

interface Slot<T> {
  time: number;
  seq: number;
  event: T;
}

/** A binary min-heap of timed events. */
export class EventQueue<T> {
  private heap: Slot<T>[] = [];
  private seq = 0;

  /** Number of queued events. */
  get size(): number {
    return this.heap.length;
  }

  /** Schedules `event` at simulated time `time`. */
  push(time: number, event: T): void {
    if (this.heap.length >= MAX_QUEUED_EVENTS) throw new Error("EventQueue: too many events");
    this.heap.push({ time, seq: this.seq++, event });
    this.up(this.heap.length - 1);
  }

  /** Removes and returns the earliest event, or undefined if empty. */
  pop(): { time: number; event: T } | undefined {
    const top = this.heap[0];
    if (top === undefined) return undefined;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    return { time: top.time, event: top.event };
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.time < y.time || (x.time === y.time && x.seq < y.seq);
  }

  private swap(a: number, b: number): void {
    const t = this.heap[a]!;
    this.heap[a] = this.heap[b]!;
    this.heap[b] = t;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heap.length && this.less(l, m)) m = l;
      if (r < this.heap.length && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
