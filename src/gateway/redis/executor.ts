/**
 * The executor: every `data` and `control` command of every connection, in arrival order, in
 * batches of at most REDIS_BATCH_MAX_COMMANDS, each batch one Basalt transaction.
 *
 * Why one serial executor: Redis runs commands one at a time, so every command sees all earlier
 * ones, and clients count on it (INCR from 50 clients must not lose a count). Running a batch in
 * one transaction keeps that order at the cost of one TSO timestamp, one KvBatchGet of the keys
 * the batch names (`prefetch`) and one commit (1PC when it fits a region) per batch, instead of
 * per command; commands of one gateway never conflict with each other. A batch whose commit
 * meets a conflict (another gateway, the reclaimer of another gateway) runs again from the
 * start in a new transaction, and replies are sent only after the commit: a client never sees
 * a reply of a write that did not happen.
 *
 * Duties of one batch: (1) begin a transaction (unless no command needs one); (2) read the
 * records the commands name; (3) run each command, in order, its Redis errors being replies;
 * (4) commit; (5) run the after-commit effects (WATCH's ts); (6) resolve every reply.
 */
import { TxnError } from "../../client/mod.ts";
import { CommitUndeterminedError } from "../../client/mod.ts";
import { REDIS_BATCH_MAX_ATTEMPTS, REDIS_BATCH_MAX_COMMANDS } from "../../constants.ts";
import { AssertionError } from "../../util/assert.ts";
import { type CommandContext, RedisError } from "./command.ts";
import { Keyspace } from "./keyspace.ts";
import { recordKey } from "./layout.ts";
import { ErrorReply, type Reply } from "./resp.ts";
import type { Session } from "./session.ts";
import type { GatewayState } from "./state.ts";

/** One unit of work of the executor. */
export interface Job {
  session: Session;
  /** Whether it reads or writes the keyspace (else it runs without a transaction). */
  needsTxn: boolean;
  /** Redis keys whose records the batch reads up front, and other storage keys to read. */
  keys: Uint8Array[];
  storageKeys: Uint8Array[];
  run(ctx: CommandContext): Reply | Promise<Reply>;
}

interface Pending {
  job: Job;
  resolve: (reply: Reply) => void;
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

/** The serial batch executor of one gateway. */
export class Executor {
  #queue: Pending[] = [];
  #running = false;
  #stopped = false;

  constructor(readonly state: GatewayState) {}

  /** Queues `job`; resolves with its reply (an error reply when its batch failed). */
  submit(job: Job): Promise<Reply> {
    if (this.#stopped) return Promise.resolve(new ErrorReply("ERR the gateway is shutting down"));
    return new Promise((resolve) => {
      this.#queue.push({ job, resolve });
      if (!this.#running) void this.#drain();
    });
  }

  /** Jobs waiting (not yet in a running batch). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Refuses new jobs; resolves once the running batch finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    while (this.#running) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.length <= REDIS_BATCH_MAX_COMMANDS
          ? this.#queue
          : this.#queue.slice(0, REDIS_BATCH_MAX_COMMANDS);
        this.#queue = this.#queue.length <= REDIS_BATCH_MAX_COMMANDS
          ? []
          : this.#queue.slice(REDIS_BATCH_MAX_COMMANDS);
        await this.#runBatch(batch);
      }
    } finally {
      this.#running = false;
    }
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
