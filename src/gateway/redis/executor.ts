/**
 * The executor: every `data` and `control` command of every connection, in batches of at most
 * REDIS_BATCH_MAX_COMMANDS commands and about REDIS_BATCH_MAX_BYTES, each batch one Basalt
 * transaction, up to REDIS_BATCHES_IN_FLIGHT_MAX batches at once.
 *
 * Why batches: a batch costs one TSO timestamp, one KvBatchGet of the keys it names
 * (`prefetch`) and one commit (1PC when it fits a region: hence the byte bound), instead of
 * that per command. Why several at once: one batch waits ~5–15 ms on those three round trips
 * (the commit's Raft log fsync the longest), during which one serial executor did nothing.
 *
 * Order (`job_order.ts`): a job is ordered after the earlier jobs on its keys and of its
 * connection, and KEYS/SCAN/FLUSHDB-like jobs after and before everything. A job joins a
 * batch only once those are committed or ahead of it in the same batch, so batches running at
 * once touch disjoint keys and never conflict with each other; every key's history and every
 * connection's is the one of Redis's serial run, and INCR from 50 clients loses no count (they
 * share a batch, or wait for the one before). A batch whose commit meets a conflict (another
 * gateway, another client of the store) runs again from the start in a new transaction, and
 * replies are resolved only after the commit: a client never sees a reply of a write that did
 * not happen.
 *
 * Duties of one batch: (1) begin a transaction (unless no command needs one); (2) read the
 * records the commands name; (3) run each command, in order, its Redis errors being replies;
 * (4) commit; (5) run the after-commit effects (WATCH's ts); (6) resolve every reply; (7) let
 * the jobs ordered after its own form the next batches.
 */
import { TxnError } from "../../client/mod.ts";
import { CommitUndeterminedError } from "../../client/mod.ts";
import { ONE_PC_MAX_BYTES } from "../../client/txn/constants.ts";
import {
  REDIS_BATCH_KEY_OVERHEAD_BYTES,
  REDIS_BATCH_MAX_ATTEMPTS,
  REDIS_BATCH_MAX_BYTES,
  REDIS_BATCH_MAX_COMMANDS,
  REDIS_BATCHES_IN_FLIGHT_MAX,
} from "../../constants.ts";
import { assert, AssertionError } from "../../util/assert.ts";
import { type CommandContext, RedisError } from "./command.ts";
import { JobOrder, type OrderNode } from "./job_order.ts";
import { Keyspace } from "./keyspace.ts";
import { binaryKey, recordKey } from "./layout.ts";
import { ErrorReply, type Reply } from "./resp.ts";
import type { Session } from "./session.ts";
import type { GatewayState } from "./state.ts";

assert(REDIS_BATCH_MAX_BYTES < ONE_PC_MAX_BYTES, "a full batch still commits by 1PC", {
  REDIS_BATCH_MAX_BYTES,
  ONE_PC_MAX_BYTES,
});

/** One unit of work of the executor. */
export interface Job {
  session: Session;
  /** Whether it reads or writes the keyspace (else it runs without a transaction). */
  needsTxn: boolean;
  /** Redis keys whose records the batch reads up front, and other storage keys to read. */
  keys: Uint8Array[];
  storageKeys: Uint8Array[];
  /**
   * Whether it may touch any key, not only `keys` (KEYS, SCAN, FLUSHDB, DBSIZE, INFO …): it
   * then runs after every job submitted before it and before every job submitted after.
   */
  global: boolean;
  /** Whether it may write (a read-only job adds nothing to a batch's bytes). */
  writes: boolean;
  /** Bytes of the arguments of its writing commands (the batch byte bound counts them). */
  argumentBytes: number;
  run(ctx: CommandContext): Reply | Promise<Reply>;
}

interface Pending {
  job: Job;
  resolve: (reply: Reply) => void;
}

/** The names a job is ordered on (`job_order.ts`): its keys and its connection. */
function orderNames(job: Job): string[] | "all" {
  if (job.global) return "all";
  const names = [`s${job.session.id}`];
  for (const key of job.keys) names.push(`k${binaryKey(key)}`);
  return names;
}

/** The batch byte estimate of `job`. */
function weightBytes(job: Job): number {
  if (!job.writes) return 0;
  return job.argumentBytes + REDIS_BATCH_KEY_OVERHEAD_BYTES * (job.keys.length + 1);
}

/** Runs a command, turning a `RedisError` into its error reply. */
export async function runCommand(
  ctx: CommandContext,
  run: (ctx: CommandContext) => Reply | Promise<Reply>,
): Promise<Reply> {
  try {
    return await run(ctx);
  } catch (error) {
    if (error instanceof RedisError) return new ErrorReply(error.message);
    throw error;
  }
}

/** The batch executor of one gateway. */
export class Executor {
  readonly #order = new JobOrder<Pending>();
  #inFlight = 0;
  #scheduled = false;
  #stopped = false;

  constructor(readonly state: GatewayState) {}

  /** Queues `job`; resolves with its reply (an error reply when its batch failed). */
  submit(job: Job): Promise<Reply> {
    if (this.#stopped) return Promise.resolve(new ErrorReply("ERR the gateway is shutting down"));
    return new Promise((resolve) => {
      this.#order.submit({ job, resolve }, orderNames(job));
      this.#schedule();
    });
  }

  /** Jobs waiting (not yet in a running batch). */
  get queued(): number {
    return this.#order.waiting;
  }

  /** Batches running now. */
  get running(): number {
    return this.#inFlight;
  }

  /** Refuses new jobs; resolves once every job submitted before ran. */
  async stop(): Promise<void> {
    this.#stopped = true;
    while (this.#order.unfinished > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /**
   * Forms batches once the current task is over: a connection hands over every command of one
   * read synchronously, and they should meet in one batch rather than the first going alone.
   */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#startBatches();
    });
  }

  #startBatches(): void {
    while (this.#inFlight < REDIS_BATCHES_IN_FLIGHT_MAX && this.#order.waiting > 0) {
      let bytes = 0;
      let counted = 0;
      const nodes = this.#order.nextBatch((pending, taken) => {
        if (taken.length >= REDIS_BATCH_MAX_COMMANDS) return false;
        while (counted < taken.length) bytes += weightBytes(taken[counted++]!.job);
        return bytes + weightBytes(pending.job) <= REDIS_BATCH_MAX_BYTES;
      });
      if (nodes.length === 0) return; // everything waits for a running batch
      this.#inFlight++;
      void this.#runBatch(nodes.map((node) => node.item)).finally(() => this.#finish(nodes));
    }
  }

  #finish(nodes: OrderNode<Pending>[]): void {
    this.#inFlight--;
    this.#order.finish(nodes);
    this.#startBatches();
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    this.state.stats.batches++;
    for (let attempt = 1;; attempt++) {
      try {
        const replies = await this.#attempt(batch);
        batch.forEach((pending, i) => pending.resolve(replies[i]!));
        return;
      } catch (error) {
        if (error instanceof AssertionError) throw error;
        const retriable = error instanceof TxnError && error.retriable &&
          !(error instanceof CommitUndeterminedError);
        if (retriable && attempt < REDIS_BATCH_MAX_ATTEMPTS) {
          this.state.stats.batchRetries++;
          const capMs = Math.min(100, 2 ** attempt);
          await new Promise((resolve) =>
            setTimeout(resolve, capMs / 2 + Math.random() * capMs / 2)
          );
          continue;
        }
        const reply = new ErrorReply(`ERR ${describeFailure(error)}`);
        for (const pending of batch) pending.resolve(reply);
        return;
      }
    }
  }

  /** One attempt at a batch: its replies once committed; throws what failed the transaction. */
  async #attempt(batch: Pending[]): Promise<Reply[]> {
    const effects: ((commitTs: bigint) => void)[] = [];
    const needsTxn = batch.some((pending) => pending.job.needsTxn);
    const txn = needsTxn ? await this.state.kv.begin({ onePc: true, asyncCommit: true }) : null;
    try {
      const ks = txn === null
        ? null
        : new Keyspace(txn, { onWrite: (key) => this.state.touch(key) });
      if (ks !== null) {
        const storageKeys: Uint8Array[] = [];
        for (const { job } of batch) {
          for (const key of job.keys) storageKeys.push(recordKey(key));
          storageKeys.push(...job.storageKeys);
        }
        await ks.prefetch(storageKeys);
      }
      const replies: Reply[] = [];
      for (const { job } of batch) {
        if (ks !== null) ks.nowMs = Date.now();
        const ctx: CommandContext = {
          ks: ks!, // commands that need no transaction never read it
          session: job.session,
          gateway: this.state,
          afterCommit: (fn) => effects.push(fn),
        };
        replies.push(await runCommand(ctx, (ctx) => job.run(ctx)));
      }
      let commitTs = 0n;
      if (txn !== null) {
        const result = await txn.commit();
        commitTs = result.commitTs === 0n ? txn.startTs : result.commitTs;
      }
      for (const effect of effects) effect(commitTs);
      this.state.stats.totalCommandsProcessed += batch.length;
      return replies;
    } catch (error) {
      if (txn !== null && txn.state === "active") await txn.rollback().catch(() => {});
      throw error;
    }
  }
}

function describeFailure(error: unknown): string {
  if (error instanceof CommitUndeterminedError) {
    return `the outcome of the transaction is unknown: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}
