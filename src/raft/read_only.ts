/**
 * ReadIndex bookkeeping on the leader (Raft thesis §6.4).
 *
 * A read request records the commit index at the time it arrived, then waits until a quorum
 * of voters acknowledges a heartbeat carrying its context: that proves the leader was still
 * the leader when the request arrived, so any read at or after that index is linearizable.
 * Requests are answered in arrival order; an acknowledgement for a later request also
 * confirms every earlier one.
 *
 * Invariants: `queue` and `pending` hold the same keys; at most `MAX_PENDING_READ_INDEX`.
 *
 * @module
 */

import { MAX_PENDING_READ_INDEX } from "./constants.ts";
import { assert, type Message } from "./types.ts";

/** A read answered by the core: the application reads once it has applied `index`. */
export interface ReadState {
  index: bigint;
  requestCtx: Uint8Array;
}

/** One ReadIndex request waiting for its heartbeat quorum. */
export interface ReadIndexStatus {
  request: Message;
  index: bigint;
  acks: Set<bigint>;
}

/** Turns request context bytes into a map key. */
export function contextKey(ctx: Uint8Array): string {
  let s = "";
  for (const b of ctx) s += String.fromCharCode(b);
  return s;
}

/** Pending ReadIndex requests of one leader term. */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Records a request for context `ctx` at commit index `index`. Duplicates are ignored. */
  addRequest(index: bigint, request: Message, ctx: Uint8Array): boolean {
    const key = contextKey(ctx);
    if (this.pending.has(key)) return true;
    if (this.queue.length >= MAX_PENDING_READ_INDEX) return false;
    this.pending.set(key, { request, index, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records that `from` acknowledged the heartbeat for `ctx`; returns the ack set. */
  recvAck(from: bigint, ctx: Uint8Array): Set<bigint> | undefined {
    const rs = this.pending.get(contextKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(from);
    return rs.acks;
  }

  /** Releases the request for `ctx` and every request queued before it. */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const released: ReadIndexStatus[] = [];
    for (const k of this.queue.slice(0, at + 1)) {
      const rs = this.pending.get(k);
      assert(rs !== undefined, "read-only queue and pending map disagree");
      released.push(rs);
      this.pending.delete(k);
    }
    this.queue = this.queue.slice(at + 1);
    return released;
  }

  /** Context of the newest pending request, if any. */
  lastPendingRequestCtx(): string | undefined {
    return this.queue[this.queue.length - 1];
  }

  /** Number of pending requests. */
  size(): number {
    return this.queue.length;
  }
}
