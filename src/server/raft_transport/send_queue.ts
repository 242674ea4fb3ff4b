/**
 * The queue of encoded envelopes waiting for one destination store, bounded in count and bytes.
 *
 * When a push would pass either bound, the OLDEST envelopes are dropped until it fits. Why the
 * oldest: the queue fills while a store is unreachable or slow, and what it holds then is
 * stale — heartbeats, votes and appends of terms and commit indexes that newer messages
 * supersede. Raft tolerates losing any message (it probes and resends), so keeping the newest
 * means the messages delivered when the link comes back are the ones still worth reading. It
 * also lets one large envelope (a snapshot) in at the cost of older small ones, where dropping
 * the newest would refuse it for as long as the queue stays full.
 *
 * Invariants: `count <= maxMessages` and `bytes <= maxBytes` after every call; envelopes leave
 * in the order they came (FIFO); every push is O(1) amortized (a head index, compacted when
 * half the array is consumed).
 *
 * @module
 */

import { assert } from "../../util/assert.ts";

/**
 * One envelope waiting to be sent: its `raft_serverpb.RaftMessage` bytes, and what a line
 * about it names (the bytes are never decoded on the way out).
 */
export interface QueuedEnvelope {
  bytes: Uint8Array;
  regionId: bigint;
  msgType: number;
}

/** The bounds of one queue. */
export interface SendQueueLimits {
  maxMessages: number;
  maxBytes: number;
}

/** A FIFO of envelopes that drops the oldest past its bounds (module header). */
export class SendQueue {
  #items: QueuedEnvelope[] = [];
  #head = 0;
  #bytes = 0;

  constructor(private readonly limits: SendQueueLimits) {
    assert(limits.maxMessages >= 1 && limits.maxBytes >= 1, "a send queue holds something", {
      ...limits,
    });
  }

  /** Envelopes queued. */
  get count(): number {
    return this.#items.length - this.#head;
  }

  /** Encoded bytes queued. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Appends `item`, first dropping the oldest envelopes until it fits; returns how many were
   * dropped. The caller guarantees one item alone fits (`item.bytes.length <= maxBytes`).
   */
  push(item: QueuedEnvelope): number {
    const size = item.bytes.length;
    assert(size <= this.limits.maxBytes, "an envelope fits an empty queue", {
      size,
      maxBytes: this.limits.maxBytes,
    });
    let dropped = 0;
    while (
      this.count > 0 &&
      (this.count + 1 > this.limits.maxMessages || this.#bytes + size > this.limits.maxBytes)
    ) {
      this.shift();
      dropped++;
    }
    this.#items.push(item);
    this.#bytes += size;
    return dropped;
  }

  /**
   * Takes the next batch: the oldest envelopes, at most `maxMessages` of them and, past the
   * first, no more than `maxBytes` in all (a first envelope larger than `maxBytes` goes alone).
   */
  takeBatch(maxMessages: number, maxBytes: number): QueuedEnvelope[] {
    const batch: QueuedEnvelope[] = [];
    let size = 0;
    while (this.count > 0 && batch.length < maxMessages) {
      const next = this.#items[this.#head]!;
      if (batch.length > 0 && size + next.bytes.length > maxBytes) break;
      batch.push(this.shift());
      size += next.bytes.length;
    }
    return batch;
  }

  /** Empties the queue; returns how many envelopes it held. */
  clear(): number {
    const count = this.count;
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    return count;
  }

  private shift(): QueuedEnvelope {
    const item = this.#items[this.#head];
    assert(item !== undefined, "shift from a non-empty queue", { head: this.#head });
    this.#items[this.#head] = undefined as unknown as QueuedEnvelope; // Let it be collected.
    this.#head++;
    this.#bytes -= item.bytes.length;
    if (this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}
