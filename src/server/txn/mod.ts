/** The transactional API: every kvproto transactional command served. */
import type { AnyCommand } from "../command.ts";
import { kvDeleteRange, kvGc } from "./gc.ts";
import { kvPessimisticLock, kvPessimisticRollback, kvResolveLock, kvScanLock } from "./locks.ts";
import { mvccGetByKey, mvccGetByStartTs } from "./mvcc_debug.ts";
import { kvBatchGet, kvGet, kvScan } from "./reads.ts";
import {
  kvBatchRollback,
  kvCheckSecondaryLocks,
  kvCheckTxnStatus,
  kvCleanup,
  kvCommit,
  kvPrewrite,
  kvTxnHeartBeat,
} from "./writes.ts";

export { newTxnStore, type TxnStore } from "./store.ts";

/** Every transactional command served. */
export const TXN_COMMANDS: readonly AnyCommand[] = [
  kvGet,
  kvBatchGet,
  kvScan,
  kvPrewrite,
  kvCommit,
  kvBatchRollback,
  kvCleanup,
  kvTxnHeartBeat,
  kvCheckTxnStatus,
  kvCheckSecondaryLocks,
  kvScanLock,
  kvResolveLock,
  kvPessimisticLock,
  kvPessimisticRollback,
  kvGc,
  kvDeleteRange,
  mvccGetByKey,
  mvccGetByStartTs,
];
