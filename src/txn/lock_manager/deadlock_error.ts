/**
 * The `Deadlock` error a pessimistic lock request gets when waiting would close a cycle: the
 * MVCC error value the scheduler returns, built from what the detector found.
 *
 * kvproto's `Deadlock` also has `wait_chain` (field 4, `deadlock.WaitForEntry`), which Basalt's
 * proto and `MvccError` do not carry yet; `waitChain` is returned beside the error so the
 * gRPC edge can fill it in once they do.
 *
 * @module
 */

import type { MvccError } from "../../mvcc/errors.ts";
import type { DeadlockInfo, WaitForEntry } from "./deadlock.ts";

/** The `Deadlock` variant of `MvccError`. */
export type DeadlockError = Extract<MvccError, { kind: "Deadlock" }>;

/**
 * The error for transaction `startTs`, refused a wait by `info`.
 *
 * @example
 * ```ts ignore
 * const outcome = await waiter.outcome;
 * if (outcome.kind === "deadlock") return err(deadlockError(startTs, outcome.deadlock).error);
 * ```
 */
export function deadlockError(
  startTs: bigint,
  info: DeadlockInfo,
): { error: DeadlockError; waitChain: readonly WaitForEntry[] } {
  // The edge that closes the cycle on the holder's side names the deadlock key.
  const closing = info.waitChain.length >= 2
    ? info.waitChain[info.waitChain.length - 2]
    : undefined;
  return {
    error: {
      kind: "Deadlock",
      startTs,
      lockTs: info.lockTs,
      lockKey: info.lockKey,
      deadlockKeyHash: info.deadlockKeyHash,
      deadlockKey: closing?.key ?? info.lockKey,
      waitChain: info.waitChain,
    },
    waitChain: info.waitChain,
  };
}
