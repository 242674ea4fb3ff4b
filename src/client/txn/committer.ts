/**
 * Committing a transaction: Percolator's two-phase commit as TiKV's clients run it, with async
 * commit and 1PC (client-go's `twoPhaseCommitter`).
 *
 * 1. Prewrite every mutation, grouped by region in batches (`TXN_BATCH_MAX_BYTES`), all
 *    batches in parallel. The primary is the first key (client-go: the first mutation; in a
 *    pessimistic transaction, the first key locked). A lock in the way is resolved
 *    (caller_start_ts 0: a writer never pushes) and the batch sent again; any other key error
 *    fails the commit, and every key is rolled back (BatchRollback) before the error is thrown
 *    — unless the transaction may have committed (below). `min_commit_ts = max(start_ts,
 *    for_update_ts) + 1`, so readers may push it.
 * 2. Commit ts:
 *    - 1PC (`try_one_pc`, only when everything fits one request to one region): the store
 *      commits in the prewrite itself and answers `one_pc_commit_ts`; 0 means it fell back to
 *      locks and the commit goes on as below. A region error that regroups the mutations into
 *      several requests (a split) drops `try_one_pc` from them: that is such a fallback.
 *    - Async commit (`use_async_commit`; the primary's request lists every secondary key and
 *      all requests carry `max_commit_ts` = now + safe window): once every prewrite succeeded
 *      the transaction IS committed, at the largest `min_commit_ts` answered. Any answer of 0
 *      means the store fell back to 2PC, and the commit goes on as 2PC.
 *    - 2PC: a fresh ts from the TSO; the primary's batch is committed first — that commit
 *      decides the transaction. TxnLockNotFound there means the transaction was rolled back
 *      (`TxnAbortedError`); CommitTsExpired (a reader pushed min_commit_ts) takes a newer ts;
 *      a lost answer is `CommitUndeterminedError`.
 * 3. Secondaries are committed after the answer is known, in batches, in the background (or
 *    awaited with `awaitSecondaries`). Failures there are harmless: readers resolve the
 *    remaining locks through the primary.
 *
 * Lost answers (client-go's `undeterminedErr`). Some requests decide the transaction by
 * themselves: the primary's KvCommit in 2PC, every prewrite with async commit (once all are
 * in, a reader's CheckSecondaryLocks commits the transaction), the prewrite with 1PC. When
 * such a request was sent and no answer came (a stream broken after it was written, a
 * deadline with it pending: `RegionSendOptions.onUnknownOutcome`), it may have been applied.
 * What may follow:
 * - Sending the same request again, to the region's leader as now located. The store answers a
 *   repeat as it answered the first: our own lock is "already prewritten" (the lock's
 *   min_commit_ts), our own commit record makes a prewrite succeed with its commit ts (TiKV
 *   `check_committed_record_on_err`) and a commit succeed. So the answer to a repeat is the
 *   truth, and a commit that gets one goes on as if nothing was lost. Repeats carry
 *   `is_retry_request`: without it the store skips the newer-version check of a pessimistic
 *   transaction's unlocked keys, and a repeat meeting its own commit would write again.
 * - A region error answer says that attempt was not applied (an earlier one still may have
 *   been). The keys are regrouped and sent again. With async commit each key's lock is the same
 *   whatever batch carries it (the primary's lists every secondary), so that is still a repeat.
 *   A 1PC request regrouped into several is not: the parts go without `try_one_pc`, and a store
 *   that committed the whole request would answer them as a fallback to 2PC; so after an
 *   unknown 1PC outcome a regrouping ends the commit as undetermined.
 * - When the commit then fails anyway (retries spent, deadline, any error), nobody knows
 *   whether the transaction committed: commit() rejects with `CommitUndeterminedError` and
 *   sends no rollback, which could undo a committed transaction. The locks it may have left
 *   are resolved by readers as any others. (As client-go, even a key error of another batch
 *   counts; it may be our own commit met by a repeat.)
 * A prewrite that cannot commit by itself (2PC) has no such case: until the primary's commit,
 * a rollback is always safe.
 *
 * `hooks` let tests stop the client at a phase boundary, as a crashed client would stop.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { bytesEqual } from "../../util/bytes.ts";
import type { Backoffer } from "../backoff.ts";
import { ClientError } from "../errors.ts";
import type { RegionInfo } from "../region.ts";
import { composeTimestamp, physicalOf, type TimestampOracle } from "../tso.ts";
import type { BufferedMutation, MutationOp } from "./buffer.ts";
import { keyId } from "./buffer.ts";
import {
  ASYNC_COMMIT_MAX_KEY_BYTES,
  ASYNC_COMMIT_MAX_KEYS,
  ASYNC_COMMIT_SAFE_WINDOW_MS,
  LOCK_BACKOFF_BASE_MS,
  LOCK_BACKOFF_CAP_MS,
  MAX_COMMIT_TS_RETRIES,
  ONE_PC_MAX_BYTES,
  TXN_BATCH_MAX_BYTES,
  TXN_BATCH_MAX_KEYS,
  TXN_MAX_CONCURRENT_BATCHES,
} from "./constants.ts";
import { CommitUndeterminedError, TxnAbortedError, TxnError } from "./errors.ts";
import type { Heartbeat } from "./heartbeat.ts";
import { type LockInfo, lockOfKeyError, txnErrorOf } from "./key_errors.ts";
import { LockBackoff } from "./lock_backoff.ts";
import type { LockResolver } from "./lock_resolver.ts";
import { chunkBySize, RETRY, type TxnRpc, withContextExtras } from "./rpc.ts";

/** How a transaction committed. */
export type CommitMode = "2pc" | "async" | "1pc";

/** Test hooks: returning "abandon" stops the client there, as if it crashed. */
export interface CommitHooks {
  /** Every key is prewritten; nothing is committed (1PC never gets here once committed). */
  afterPrewrite?: () => Promise<"abandon" | void>;
  /**
   * The transaction is decided: 2PC — the primary is committed; async commit — every
   * prewrite succeeded. No secondary is committed yet.
   */
  afterPrimaryCommit?: () => Promise<"abandon" | void>;
}

/** The outcome of a commit. */
export interface CommitResult {
  /** The commit ts (0 when nothing was written, or the client abandoned before deciding). */
  commitTs: bigint;
  mode: CommitMode | "empty";
  /** Set when a hook abandoned the commit. */
  abandonedAfter?: "prewrite" | "primaryCommit";
}

/** Everything the committer needs of the client. */
export interface CommitterContext {
  rpc: TxnRpc;
  tso: TimestampOracle;
  resolver: LockResolver;
  timeoutMs: number;
  /** Runs background work (secondary commits); the client awaits it at close. */
  background: (work: Promise<unknown>) => void;
}

/** The transaction being committed. */
export interface CommitPlan {
  startTs: bigint;
  /** Mutations in key order. */
  mutations: readonly BufferedMutation[];
  primary: Uint8Array;
  /** Pessimistic transactions: the newest for_update_ts and the keys holding pessimistic locks. */
  pessimistic: { forUpdateTs: bigint; lockedKeys: ReadonlySet<string> } | null;
  asyncCommit: boolean;
  onePc: boolean;
  lockTtlMs: number;
  awaitSecondaries: boolean;
  heartbeat: Heartbeat | null;
  hooks?: CommitHooks;
}

const OPS: Record<MutationOp, kvrpcpb.Op> = {
  Put: kvrpcpb.Op.Put,
  Del: kvrpcpb.Op.Del,
  Insert: kvrpcpb.Op.Insert,
  Lock: kvrpcpb.Op.Lock,
  CheckNotExists: kvrpcpb.Op.CheckNotExists,
};

const mutationBytes = (mutation: BufferedMutation) => mutation.key.length + mutation.value.length;

/** Splits a region's mutations into prewrite batches. */
function chunkMutations(mutations: BufferedMutation[]): BufferedMutation[][] {
  return chunkBySize(mutations, {
    maxItems: TXN_BATCH_MAX_KEYS,
    maxBytes: TXN_BATCH_MAX_BYTES,
    sizeOf: mutationBytes,
  });
}

/** Commits one transaction (see the module comment). */
export class Committer {
  readonly #context: CommitterContext;
  readonly #plan: CommitPlan;
  readonly #backoffer: Backoffer;
  readonly #minCommitTs: bigint;
  #mode: CommitMode = "2pc";
  #maxCommitTs = 0n;
  /** Async commit: the largest min_commit_ts answered; 0 after a fallback to 2PC. */
  #asyncCommitTs = 0n;
  #asyncFellBack = false;
  #onePcCommitTs = 0n;
  #onePcFellBack = false;
  /**
   * The first unknown outcome of a prewrite that may commit the transaction by itself (async
   * commit or 1PC); null while every such send was answered. See "Lost answers".
   */
  #prewriteUnknown: ClientError | null = null;
  /** Whether a 1PC prewrite's outcome was unknown (no regrouping without 1PC then). */
  #onePcUnknown = false;
  /** Whether any prewrite was sent again: every later one carries `is_retry_request`. */
  #prewriteResent = false;
  /** The first unknown outcome of the primary's commit (2PC). */
  #primaryCommitUnknown: ClientError | null = null;

  constructor(context: CommitterContext, plan: CommitPlan) {
    if (plan.mutations.length === 0) throw new Error("Committer: nothing to commit");
    if (!plan.mutations.some((mutation) => bytesEqual(mutation.key, plan.primary))) {
      throw new Error("Committer: the primary is not among the mutations");
    }
    this.#context = context;
    this.#plan = plan;
    this.#backoffer = context.rpc.backoffer(context.timeoutMs);
    const base = plan.pessimistic !== null && plan.pessimistic.forUpdateTs > plan.startTs
      ? plan.pessimistic.forUpdateTs
      : plan.startTs;
    this.#minCommitTs = base + 1n;
  }

  /** Runs the commit; resolves with the commit ts or rejects with a `TxnError`/`ClientError`. */
  async commit(): Promise<CommitResult> {
    const plan = this.#plan;
    const groups = await this.#context.rpc.groupByRegion(
      plan.mutations,
      (mutation) => mutation.key,
      this.#backoffer,
    );
    const oneRequest = groups.length === 1 && chunkMutations(groups[0]!.items).length === 1;
    const bytes = plan.mutations.reduce((sum, mutation) => sum + mutationBytes(mutation), 0);
    const keyBytes = plan.mutations.reduce((sum, mutation) => sum + mutation.key.length, 0);
    if (plan.onePc && oneRequest && bytes <= ONE_PC_MAX_BYTES) this.#mode = "1pc";
    else if (
      plan.asyncCommit && plan.mutations.length <= ASYNC_COMMIT_MAX_KEYS &&
      keyBytes <= ASYNC_COMMIT_MAX_KEY_BYTES
    ) {
      this.#mode = "async";
    }
    const useAsync = this.#mode === "async" ||
      (this.#mode === "1pc" && plan.asyncCommit && plan.mutations.length <= ASYNC_COMMIT_MAX_KEYS);
    if (this.#mode !== "2pc") {
      const nowMs = Math.max(this.#context.rpc.clock.nowMs(), physicalOf(plan.startTs));
      this.#maxCommitTs = composeTimestamp(nowMs + ASYNC_COMMIT_SAFE_WINDOW_MS);
    }
    plan.heartbeat?.start();
    try {
      await this.#prewrite(useAsync);
    } catch (error) {
      plan.heartbeat?.stop();
      // The transaction may be committed: a rollback could undo it ("Lost answers").
      if (this.#prewriteUnknown !== null) throw this.#prewriteUndetermined(error);
      await this.#rollbackAll();
      throw error;
    }
    if ((await plan.hooks?.afterPrewrite?.()) === "abandon") {
      plan.heartbeat?.stop();
      return { commitTs: 0n, mode: this.#mode, abandonedAfter: "prewrite" };
    }
    try {
      return await this.#decide(useAsync);
    } finally {
      plan.heartbeat?.stop();
    }
  }

  /** After a successful prewrite: the commit ts, and the commits it takes. */
  async #decide(useAsync: boolean): Promise<CommitResult> {
    if (this.#mode === "1pc" && !this.#onePcFellBack && this.#onePcCommitTs > 0n) {
      return { commitTs: this.#onePcCommitTs, mode: "1pc" };
    }
    if (useAsync && !this.#asyncFellBack && this.#asyncCommitTs > 0n) {
      // Committed: every key is locked with the secondaries list; now make it visible.
      const commitTs = this.#asyncCommitTs;
      if ((await this.#plan.hooks?.afterPrimaryCommit?.()) === "abandon") {
        return { commitTs, mode: "async", abandonedAfter: "primaryCommit" };
      }
      await this.#commitSecondaries(commitTs, { includePrimary: true });
      return { commitTs, mode: "async" };
    }
    const commitTs = await this.#commitPrimary();
    if ((await this.#plan.hooks?.afterPrimaryCommit?.()) === "abandon") {
      return { commitTs, mode: "2pc", abandonedAfter: "primaryCommit" };
    }
    await this.#commitSecondaries(commitTs, { includePrimary: false });
    return { commitTs, mode: "2pc" };
  }

  /** Prewrites every batch, in parallel. */
  async #prewrite(useAsync: boolean): Promise<void> {
    const plan = this.#plan;
    const secondaries = useAsync
      ? plan.mutations.filter((m) => !bytesEqual(m.key, plan.primary)).map((m) => m.key)
      : [];
    await this.#context.rpc.forEachRegionBatch(plan.mutations, {
      keyOf: (mutation) => mutation.key,
      chunk: chunkMutations,
      backoffer: this.#backoffer,
      concurrency: TXN_MAX_CONCURRENT_BATCHES,
      send: (region, batch, backoffer) =>
        this.#prewriteBatch(region, batch, { useAsync, secondaries, backoffer }),
    });
  }

  async #prewriteBatch(
    region: RegionInfo,
    batch: BufferedMutation[],
    how: { useAsync: boolean; secondaries: Uint8Array[]; backoffer: Backoffer },
  ): Promise<void | typeof RETRY> {
    const plan = this.#plan;
    const isPrimary = batch.some((mutation) => bytesEqual(mutation.key, plan.primary));
    // 1PC commits what one request carries, so it is asked only of a request carrying every
    // mutation: once a split made the one region two, the regrouped batches are prewritten
    // without it (each region committing its part on its own would not be atomic), the store
    // answers one_pc_commit_ts 0, and the commit goes on as async commit or 2PC (client-go:
    // "doActionOnMutations will unset useOnePC if the mutations is splitted").
    const onePc = this.#mode === "1pc" && batch.length === plan.mutations.length;
    if (this.#mode === "1pc" && !onePc && this.#onePcUnknown) {
      // The lost 1PC request may have committed every key: parts of it without 1PC would be
      // answered as a fallback to 2PC ("Lost answers").
      throw this.#undeterminedPrewrite("its keys are now in several regions");
    }
    // This request alone may commit the transaction: its lost answer leaves it undetermined.
    const decides = onePc || how.useAsync;
    const pessimistic = plan.pessimistic;
    const body = {
      mutations: batch.map((m) => ({ op: OPS[m.op], key: m.key, value: m.value })),
      primaryLock: plan.primary,
      startVersion: plan.startTs,
      lockTtl: BigInt(plan.lockTtlMs),
      txnSize: BigInt(plan.mutations.length),
      forUpdateTs: pessimistic?.forUpdateTs ?? 0n,
      pessimisticActions: pessimistic === null
        ? []
        : batch.map((m) =>
          pessimistic.lockedKeys.has(keyId(m.key))
            ? kvrpcpb.PrewriteRequest.PessimisticAction.DO_PESSIMISTIC_CHECK
            : kvrpcpb.PrewriteRequest.PessimisticAction.SKIP_PESSIMISTIC_CHECK
        ),
      minCommitTs: this.#minCommitTs,
      useAsyncCommit: how.useAsync,
      secondaries: how.useAsync && isPrimary ? how.secondaries : [],
      tryOnePc: onePc,
      maxCommitTs: this.#maxCommitTs,
    };
    const { backoffer } = how;
    const lockBackoff = new LockBackoff(backoffer, {
      baseMs: LOCK_BACKOFF_BASE_MS,
      capMs: LOCK_BACKOFF_CAP_MS,
    });
    for (;;) {
      // A repeat of the same prewrite is safe ("Lost answers"); it says it is one.
      const request = this.#prewriteResent
        ? withContextExtras({ ...body }, { isRetryRequest: true })
        : body;
      const response = await this.#context.rpc.sendToRegion("Prewrite", region, request, {
        backoffer,
        idempotent: true,
        onUnknownOutcome: decides
          ? (error) => {
            this.#prewriteUnknown ??= error;
            this.#onePcUnknown ||= onePc;
          }
          : undefined,
      });
      if (response === RETRY) {
        this.#prewriteResent = true;
        return RETRY;
      }
      if (response.errors.length === 0) {
        this.#notePrewrite(response, how.useAsync);
        return;
      }
      const locks: LockInfo[] = [];
      for (const error of response.errors) {
        const lock = lockOfKeyError(error);
        if (lock === null) throw txnErrorOf(error, plan.startTs);
        locks.push(lock);
      }
      const result = await this.#context.resolver.resolveLocks(locks, {
        callerStartTs: 0n,
        backoffer,
      });
      if (result.msBeforeExpired > 0) {
        await lockBackoff.wait(result.msBeforeExpired, `the locks met by txn ${plan.startTs}`);
      }
      this.#prewriteResent = true;
    }
  }

  /** What a prewrite failure after an unknown outcome means for the caller. */
  #prewriteUndetermined(error: unknown): unknown {
    if (error instanceof CommitUndeterminedError) return error;
    // Anything else is a bug, thrown as it is (still with no rollback).
    if (!(error instanceof ClientError) && !(error instanceof TxnError)) return error;
    return this.#undeterminedPrewrite(error.message, error);
  }

  #undeterminedPrewrite(then: string, cause?: unknown): CommitUndeterminedError {
    const unknown = this.#prewriteUnknown;
    if (unknown === null) throw new Error("Committer: undetermined without a lost answer");
    const kind = this.#onePcUnknown ? "a 1PC" : "an async-commit";
    return new CommitUndeterminedError(this.#plan.startTs, "prewrite", {
      reason: `${kind} prewrite was sent and its answer lost (${unknown.message}); then: ${then}`,
      cause,
    });
  }

  #notePrewrite(response: kvrpcpb.PrewriteResponse, useAsync: boolean): void {
    if (this.#mode === "1pc") {
      if (response.onePcCommitTs === 0n) this.#onePcFellBack = true;
      else this.#onePcCommitTs = response.onePcCommitTs;
    }
    if (useAsync) {
      if (response.minCommitTs === 0n) this.#asyncFellBack = true;
      else if (response.minCommitTs > this.#asyncCommitTs) {
        this.#asyncCommitTs = response.minCommitTs;
      }
    }
  }

  /** 2PC: takes a commit ts and commits the primary's batch; returns the commit ts. */
  async #commitPrimary(): Promise<bigint> {
    const plan = this.#plan;
    for (let attempt = 0;; attempt++) {
      const commitTs = await this.#context.tso.getTimestamp({
        deadlineMs: this.#backoffer.deadlineMs,
      });
      if (commitTs <= plan.startTs) {
        throw new Error(`TSO returned commit ts ${commitTs} <= start ts ${plan.startTs}`);
      }
      const primaryOnly = plan.mutations.filter((m) => bytesEqual(m.key, plan.primary));
      let expired = false;
      // A lost answer of an earlier commit ts was settled by the answer to its repeat
      // (CommitTsExpired: not applied, or a repeat meeting the commit record would succeed).
      this.#primaryCommitUnknown = null;
      try {
        await this.#commitKeys(primaryOnly.map((m) => m.key), commitTs, {
          primary: true,
          onExpired: () => expired = true,
          onUnknownOutcome: (error) => this.#primaryCommitUnknown ??= error,
        });
      } catch (error) {
        throw this.#primaryCommitFailure(error);
      }
      if (!expired) return commitTs;
      if (attempt + 1 >= MAX_COMMIT_TS_RETRIES) {
        throw new TxnAbortedError(plan.startTs, "commit ts kept expiring (min_commit_ts pushed)");
      }
    }
  }

  /**
   * What a failed primary commit means for the caller. A key error is the store's answer to
   * the last send, a repeat of any lost one (a commit record makes a repeat succeed), so it
   * stands. Any other failure after a send with no answer leaves the transaction undetermined;
   * one where every send was answered (region errors until the deadline) did not commit it.
   */
  #primaryCommitFailure(error: unknown): unknown {
    const unknown = this.#primaryCommitUnknown;
    if (error instanceof TxnError || unknown === null || !(error instanceof ClientError)) {
      return error;
    }
    return new CommitUndeterminedError(this.#plan.startTs, "primaryCommit", {
      reason: `the commit of its primary key was sent and its answer lost (${unknown.message}); ` +
        `then: ${error.message}`,
      cause: error,
    });
  }

  /** Commits every key but the primary (and the primary too for async commit). */
  async #commitSecondaries(commitTs: bigint, how: { includePrimary: boolean }): Promise<void> {
    const plan = this.#plan;
    const keys = plan.mutations
      .filter((m) => how.includePrimary || !bytesEqual(m.key, plan.primary))
      .map((m) => m.key);
    if (keys.length === 0) return;
    const work = this.#commitKeys(keys, commitTs, { primary: false, onExpired: () => {} })
      .catch(() => {
        // Readers resolve what is left through the primary, which is committed.
      });
    if (plan.awaitSecondaries) await work;
    else this.#context.background(work);
  }

  /** KvCommit of `keys` at `commitTs`, grouped by region. */
  async #commitKeys(
    keys: Uint8Array[],
    commitTs: bigint,
    how: {
      primary: boolean;
      onExpired: () => void;
      onUnknownOutcome?: (error: ClientError) => void;
    },
  ): Promise<void> {
    const plan = this.#plan;
    const backoffer = how.primary ? this.#backoffer : this.#context.rpc.backoffer(
      this.#context.timeoutMs,
    );
    await this.#context.rpc.forEachKeyBatch(keys, {
      backoffer,
      send: async (region, part, requestBackoffer) => {
        const response = await this.#context.rpc.sendToRegion("Commit", region, {
          startVersion: plan.startTs,
          keys: part,
          commitVersion: commitTs,
          primaryKey: plan.primary,
          commitRole: how.primary ? kvrpcpb.CommitRole.Primary : kvrpcpb.CommitRole.Secondary,
        }, {
          backoffer: requestBackoffer,
          idempotent: true,
          onUnknownOutcome: how.onUnknownOutcome,
        });
        if (response === RETRY) return RETRY;
        if (response.error == null) return;
        if (response.error.commitTsExpired != null) {
          how.onExpired();
          return;
        }
        throw txnErrorOf(response.error, plan.startTs);
      },
    });
  }

  /** Rolls back every key after a failed prewrite (best effort: locks also expire). */
  async #rollbackAll(): Promise<void> {
    const plan = this.#plan;
    const backoffer = this.#context.rpc.backoffer(this.#context.timeoutMs);
    try {
      await this.#context.rpc.forEachKeyBatch(plan.mutations.map((m) => m.key), {
        backoffer,
        send: async (region, part, requestBackoffer) => {
          const response = await this.#context.rpc.sendToRegion("BatchRollback", region, {
            startVersion: plan.startTs,
            keys: part,
          }, { backoffer: requestBackoffer, idempotent: true });
          if (response === RETRY) return RETRY;
        },
      });
    } catch (error) {
      if (!(error instanceof ClientError) && !(error instanceof TxnError)) throw error;
    }
  }
}
