/**
 * The store-to-store Raft transport: `RaftClient` (the raftstore's `Transport` over
 * `tikvpb.Tikv/BatchRaft` streams) and `raftService` (the receiving handlers of `BatchRaft` and
 * `Raft`). README.md has the decisions, the limits and the wiring into the store.
 *
 * @module
 */
export {
  DEFAULT_RAFT_CLIENT_LIMITS,
  type EncodedAbout,
  type EncodedTransport,
  RaftClient,
  type RaftClientLimits,
  type RaftClientOptions,
  type RaftClientStats,
} from "./client.ts";
export {
  appendEnvelope,
  decodeBatch,
  type Decoded,
  decodeEnvelope,
  encodeEnvelope,
  envelopeFromProto,
  envelopeToProto,
  frameBatch,
  messageFromProto,
  messageToProto,
  peekKeyRange,
  peekRegionId,
  splitBatch,
} from "./codec.ts";
export {
  BATCH_RAFT_PATH,
  RAFT_PATH,
  raftMethodDefinitions,
  type TransportLog,
  type TransportLogFields,
} from "./methods.ts";
export {
  type RaftService,
  raftService,
  type RaftServiceOptions,
  type RaftServiceStats,
  type ReceivedRaftMessage,
} from "./service.ts";
