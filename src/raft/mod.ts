/**
 * Basalt's Raft: a pure, etcd/raft-style consensus state machine.
 *
 * @module
 */

export * from "./types.ts";
export * from "./storage.ts";
export { MemoryStorage } from "./memory_storage.ts";
export {
  CampaignType,
  Raft,
  type RaftConfig,
  type RaftTestingBugs,
  type RandomSource,
  ReadOnlyOption,
  StateRole,
  type StepError,
} from "./raft.ts";
export { RawNode, type Ready, SnapshotStatus, type SoftState, type Status } from "./raw_node.ts";
export type { ReadState } from "./read_only.ts";
export { applyConfChangeToConfState } from "./tracker.ts";
export { ProgressState } from "./progress.ts";
export { describeBytes, describeEntry, describeHardState, describeMessage } from "./describe.ts";
