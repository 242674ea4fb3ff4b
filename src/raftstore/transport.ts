/**
 * How peers on different stores reach each other: a `RaftEnvelope` is
 * `raft_serverpb.RaftMessage` as a value (region, sending and receiving peers, the sender's
 * epoch and range, the eraftpb message), and a `Transport` carries envelopes to other stores.
 *
 * This module imports nothing of any implementation. The in-memory transport of the test harness
 * (`testing/memory_transport.ts`) is one; the gRPC `BatchRaft` streams between store processes
 * will be another, converting to `raft_serverpb.RaftMessage` bytes at that edge.
 *
 * Delivery promises: none. An envelope may be dropped, delayed, duplicated or reordered; Raft
 * and the store's message checks (stale epochs, tombstones) tolerate all of it.
 *
 * @module
 */

import type { Message } from "../raft/mod.ts";
import type { PeerMeta, RegionEpoch, RegionMeta } from "./local_state.ts";

/** raft_serverpb.RaftMessage as a value. */
export interface RaftEnvelope {
  regionId: bigint;
  fromPeer: PeerMeta;
  toPeer: PeerMeta;
  /** The sender's region epoch when it sent. */
  regionEpoch: RegionEpoch;
  /** The sender's region range, so that a store can create the receiving peer. */
  startKey: Uint8Array;
  endKey: Uint8Array;
  /** The Raft message (unused when `isTombstone`). */
  message: Message;
  /** The sender knows the receiving peer was removed from the region: destroy it. */
  isTombstone: boolean;
  /**
   * With `isTombstone`, from a store whose replica of the region merged away: the merge's target
   * as the source recorded it (kvproto's `merge_target`). The receiver destroys its lagging
   * replica of the source only once its own replica of the target is past that epoch.
   */
  mergeTarget?: RegionMeta;
  /**
   * The sending replica asks whether it was removed from the region (kvproto's ExtraMessage
   * MsgCheckStalePeer; `message` is unused): a store that knows it was answers with a tombstone
   * envelope (store.ts).
   */
  checkStale?: true;
}

/** Carries envelopes to the stores of their `toPeer`. */
export interface Transport {
  /** Hands `envelope` over for delivery; never blocks, never throws for an unreachable store. */
  send(envelope: RaftEnvelope): void;
}
