/**
 * What a leader knows about each follower's log, and the flow control built on it.
 *
 * A follower's progress is in one of three states (as in etcd/raft):
 * - Probe: the leader does not know where the follower's log matches; it sends one MsgAppend
 *   per heartbeat interval and waits for the answer before sending the next.
 * - Replicate: the logs match up to `match`; the leader streams MsgAppend optimistically,
 *   advancing `next` on send, with at most `maxInflightMsgs` unacknowledged messages.
 * - Snapshot: the follower needs a snapshot; nothing is sent until it reports back.
 *
 * Invariants (asserted): `match < next`; in Replicate, the inflight window holds increasing
 * last-indexes, each `<= next - 1`.
 *
 * @module
 */

import { assert, maxBig, minBig } from "./types.ts";

/** The three flow-control states of a follower's progress. */
export enum ProgressState {
  Probe = "Probe",
  Replicate = "Replicate",
  Snapshot = "Snapshot",
}

/** A bounded ring of the last index of each unacknowledged MsgAppend. */
export class Inflights {
  private readonly buffer: bigint[];
  private start = 0;
  /** How many messages are in flight. */
  count = 0;

  /** A window of at most `capacity` messages. */
  constructor(readonly capacity: number) {
    assert(capacity > 0, `inflight capacity must be positive, got ${capacity}`);
    this.buffer = new Array<bigint>(capacity).fill(0n);
  }

  /** True when no more messages may be sent. */
  full(): boolean {
    return this.count === this.capacity;
  }

  /** Records a message whose last entry is `lastIndex`. */
  add(lastIndex: bigint): void {
    assert(!this.full(), "inflights: add to a full window");
    const i = (this.start + this.count) % this.capacity;
    if (this.count > 0) {
      const prev = this.buffer[(i + this.capacity - 1) % this.capacity]!;
      assert(lastIndex > prev, `inflights: ${lastIndex} not after ${prev}`);
    }
    this.buffer[i] = lastIndex;
    this.count++;
  }

  /** Frees every message whose last index is `<= index` (the follower acknowledged it). */
  freeTo(index: bigint): void {
    while (this.count > 0 && this.buffer[this.start]! <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
  }

  /** Frees the oldest message (a heartbeat response proves the follower is alive). */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  /** Empties the window. */
  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

/** The leader's view of one peer. */
export class Progress {
  /** Highest index known to be replicated on the peer. */
  match = 0n;
  /** Index of the next entry to send. */
  next: bigint;
  /** Flow-control state. */
  state: ProgressState = ProgressState.Probe;
  /** In Snapshot state, the index of the snapshot being sent. */
  pendingSnapshot = 0n;
  /** Whether the peer answered since the last check-quorum round. */
  recentActive = false;
  /** In Probe state: a probe was sent and is unanswered, so sending pauses. */
  probeSent = false;
  /** Unacknowledged appends in Replicate state. */
  readonly inflights: Inflights;
  /** Whether the peer is a learner (receives the log, never votes, never counts to quorum). */
  isLearner: boolean;
  /** Leader tick at which the newest heartbeat this peer acknowledged was sent (lease reads). */
  ackedHeartbeatSentTick = -1;

  /** Progress for a peer whose next entry is `next`. */
  constructor(opts: { next: bigint; maxInflightMsgs: number; isLearner: boolean }) {
    this.next = opts.next;
    this.inflights = new Inflights(opts.maxInflightMsgs);
    this.isLearner = opts.isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0n;
    this.state = state;
    this.inflights.reset();
  }

  /** Enter Probe: send from just after `match`. */
  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = maxBig(this.match + 1n, pending + 1n);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1n;
    }
  }

  /** Enter Replicate: stream from just after `match`. */
  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1n;
  }

  /** Enter Snapshot: a snapshot at `snapshotIndex` is on its way. */
  becomeSnapshot(snapshotIndex: bigint): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** The peer acknowledged up to `n`. Returns false if that is old news. */
  maybeUpdate(n: bigint): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = maxBig(this.next, n + 1n);
    return updated;
  }

  /** Optimistically advance `next` after sending entries up to `lastIndex` (Replicate). */
  optimisticUpdate(lastIndex: bigint): void {
    this.next = lastIndex + 1n;
  }

  /**
   * The peer rejected an append at `rejected`, hinting its log ends near `matchHint`.
   * Returns false if the rejection is stale (an answer to an older message).
   */
  maybeDecreaseTo(answer: { rejected: bigint; matchHint: bigint }): boolean {
    const { rejected, matchHint } = answer;
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false; // Stale: we already know it matches there.
      this.next = this.match + 1n;
      return true;
    }
    if (this.next - 1n !== rejected) return false; // Stale: not an answer to our last probe.
    this.next = maxBig(minBig(rejected, matchHint + 1n), 1n);
    this.probeSent = false;
    return true;
  }

  /** True if the leader must not send more appends now. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }

  /** One-line rendering for traces and datadriven tests. */
  toString(): string {
    const extra = this.state === ProgressState.Snapshot
      ? ` pendingSnap=${this.pendingSnapshot}`
      : "";
    const learner = this.isLearner ? " learner" : "";
    return `${this.state} match=${this.match} next=${this.next}${extra}${learner}` +
      (this.isPaused() ? " paused" : "");
  }
}
