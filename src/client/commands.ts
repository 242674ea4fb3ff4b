/**
 * The store commands a client sends, by name: for each, its unary gRPC method of
 * `tikvpb.Tikv`, its request and response codecs, and whether it can ride a BatchCommands
 * stream.
 *
 * A command's name is its `BatchCommandsRequest.Request` oneof member when it has one ("RawGet",
 * "Get", "Prewrite", "CheckTxnStatus", …) — kvproto's names, so the names a TiKV client uses.
 * Commands that kvproto leaves out of BatchCommands ("RawCompareAndSwap", "RawGetKeyTTL",
 * "RawChecksum", "MvccGetByKey", …) are named by their gRPC method and always go unary.
 */
import { kvrpcpb, tikvpb } from "../../proto/mod.ts";

/** A protobufjs static message class, as far as the transport needs it. */
export interface MessageCodec<Request, Response> {
  encode(message: Request): { finish(): Uint8Array };
  decode(bytes: Uint8Array): Response;
}

interface CommandSpec<Request, Response> {
  /** The unary method of `tikvpb.Tikv`, or null when the command exists only in BatchCommands. */
  method: string | null;
  request: MessageCodec<Request, unknown>;
  response: MessageCodec<unknown, Response>;
  /** Whether the command is a BatchCommands oneof member. */
  batch: boolean;
}

function spec<Request, Response>(
  method: string | null,
  codecs: { request: MessageCodec<Request, unknown>; response: MessageCodec<unknown, Response> },
  batch = true,
): CommandSpec<Request, Response> {
  return { method, request: codecs.request, response: codecs.response, batch };
}

const k = kvrpcpb;

/** Every command, by name. */
export const COMMANDS = {
  // Transactional commands (BatchCommands members).
  Get: spec("KvGet", { request: k.GetRequest, response: k.GetResponse }),
  Scan: spec("KvScan", { request: k.ScanRequest, response: k.ScanResponse }),
  Prewrite: spec("KvPrewrite", { request: k.PrewriteRequest, response: k.PrewriteResponse }),
  Commit: spec("KvCommit", { request: k.CommitRequest, response: k.CommitResponse }),
  Import: spec("KvImport", { request: k.ImportRequest, response: k.ImportResponse }),
  Cleanup: spec("KvCleanup", { request: k.CleanupRequest, response: k.CleanupResponse }),
  BatchGet: spec("KvBatchGet", { request: k.BatchGetRequest, response: k.BatchGetResponse }),
  BatchRollback: spec("KvBatchRollback", {
    request: k.BatchRollbackRequest,
    response: k.BatchRollbackResponse,
  }),
  ScanLock: spec("KvScanLock", { request: k.ScanLockRequest, response: k.ScanLockResponse }),
  ResolveLock: spec("KvResolveLock", {
    request: k.ResolveLockRequest,
    response: k.ResolveLockResponse,
  }),
  GC: spec("KvGC", { request: k.GCRequest, response: k.GCResponse }),
  DeleteRange: spec("KvDeleteRange", {
    request: k.DeleteRangeRequest,
    response: k.DeleteRangeResponse,
  }),
  PessimisticLock: spec("KvPessimisticLock", {
    request: k.PessimisticLockRequest,
    response: k.PessimisticLockResponse,
  }),
  PessimisticRollback: spec("KVPessimisticRollback", {
    request: k.PessimisticRollbackRequest,
    response: k.PessimisticRollbackResponse,
  }),
  CheckTxnStatus: spec("KvCheckTxnStatus", {
    request: k.CheckTxnStatusRequest,
    response: k.CheckTxnStatusResponse,
  }),
  TxnHeartBeat: spec("KvTxnHeartBeat", {
    request: k.TxnHeartBeatRequest,
    response: k.TxnHeartBeatResponse,
  }),
  CheckSecondaryLocks: spec("KvCheckSecondaryLocks", {
    request: k.CheckSecondaryLocksRequest,
    response: k.CheckSecondaryLocksResponse,
  }),
  FlashbackToVersion: spec("KvFlashbackToVersion", {
    request: k.FlashbackToVersionRequest,
    response: k.FlashbackToVersionResponse,
  }),
  PrepareFlashbackToVersion: spec("KvPrepareFlashbackToVersion", {
    request: k.PrepareFlashbackToVersionRequest,
    response: k.PrepareFlashbackToVersionResponse,
  }),
  Flush: spec("KvFlush", { request: k.FlushRequest, response: k.FlushResponse }),
  BufferBatchGet: spec("KvBufferBatchGet", {
    request: k.BufferBatchGetRequest,
    response: k.BufferBatchGetResponse,
  }),

  // Raw commands (BatchCommands members).
  RawGet: spec("RawGet", { request: k.RawGetRequest, response: k.RawGetResponse }),
  RawBatchGet: spec("RawBatchGet", {
    request: k.RawBatchGetRequest,
    response: k.RawBatchGetResponse,
  }),
  RawPut: spec("RawPut", { request: k.RawPutRequest, response: k.RawPutResponse }),
  RawBatchPut: spec("RawBatchPut", {
    request: k.RawBatchPutRequest,
    response: k.RawBatchPutResponse,
  }),
  RawDelete: spec("RawDelete", { request: k.RawDeleteRequest, response: k.RawDeleteResponse }),
  RawBatchDelete: spec("RawBatchDelete", {
    request: k.RawBatchDeleteRequest,
    response: k.RawBatchDeleteResponse,
  }),
  RawScan: spec("RawScan", { request: k.RawScanRequest, response: k.RawScanResponse }),
  RawDeleteRange: spec("RawDeleteRange", {
    request: k.RawDeleteRangeRequest,
    response: k.RawDeleteRangeResponse,
  }),
  RawBatchScan: spec("RawBatchScan", {
    request: k.RawBatchScanRequest,
    response: k.RawBatchScanResponse,
  }),
  RawCoprocessor: spec("RawCoprocessor", {
    request: k.RawCoprocessorRequest,
    response: k.RawCoprocessorResponse,
  }),

  // Store-level commands (BatchCommands members).
  GetHealthFeedback: spec("GetHealthFeedback", {
    request: k.GetHealthFeedbackRequest,
    response: k.GetHealthFeedbackResponse,
  }),
  BroadcastTxnStatus: spec("BroadcastTxnStatus", {
    request: k.BroadcastTxnStatusRequest,
    response: k.BroadcastTxnStatusResponse,
  }),
  /** A no-op the server answers after `delay_time` ms; for probes and tests. Stream only. */
  Empty: spec(null, {
    request: tikvpb.BatchCommandsEmptyRequest,
    response: tikvpb.BatchCommandsEmptyResponse,
  }),

  // Unary only: kvproto has no BatchCommands member for these.
  RawGetKeyTTL: spec("RawGetKeyTTL", {
    request: k.RawGetKeyTTLRequest,
    response: k.RawGetKeyTTLResponse,
  }, false),
  RawCompareAndSwap: spec("RawCompareAndSwap", {
    request: k.RawCASRequest,
    response: k.RawCASResponse,
  }, false),
  RawChecksum: spec("RawChecksum", {
    request: k.RawChecksumRequest,
    response: k.RawChecksumResponse,
  }, false),
  UnsafeDestroyRange: spec("UnsafeDestroyRange", {
    request: k.UnsafeDestroyRangeRequest,
    response: k.UnsafeDestroyRangeResponse,
  }, false),
  SplitRegion: spec("SplitRegion", {
    request: k.SplitRegionRequest,
    response: k.SplitRegionResponse,
  }, false),
  ReadIndex: spec(
    "ReadIndex",
    { request: k.ReadIndexRequest, response: k.ReadIndexResponse },
    false,
  ),
  MvccGetByKey: spec("MvccGetByKey", {
    request: k.MvccGetByKeyRequest,
    response: k.MvccGetByKeyResponse,
  }, false),
  MvccGetByStartTs: spec("MvccGetByStartTs", {
    request: k.MvccGetByStartTsRequest,
    response: k.MvccGetByStartTsResponse,
  }, false),
  CheckLeader: spec("CheckLeader", {
    request: k.CheckLeaderRequest,
    response: k.CheckLeaderResponse,
  }, false),
  GetStoreSafeTS: spec("GetStoreSafeTS", {
    request: k.StoreSafeTSRequest,
    response: k.StoreSafeTSResponse,
  }, false),
} as const;

/** The name of a command (see the module comment). */
export type CommandName = keyof typeof COMMANDS;

/** The request message (plain properties) of command `C`, e.g. `RequestOf<"RawGet">`. */
export type RequestOf<C extends CommandName> = Parameters<
  typeof COMMANDS[C]["request"]["encode"]
>[0];

/** The decoded response of command `C`, e.g. `ResponseOf<"RawGet">` is `kvrpcpb.RawGetResponse`. */
export type ResponseOf<C extends CommandName> = ReturnType<
  typeof COMMANDS[C]["response"]["decode"]
>;

/** Whether `name` is a command. */
export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}
