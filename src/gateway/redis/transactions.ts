/**
 * MULTI/EXEC/DISCARD/WATCH/UNWATCH. An EXEC runs its queued commands one after another inside
 * its batch's Basalt transaction, so they commit together or not at all, and no other command
 * on their keys runs between them (a batch running beside it touches other keys: job_order.ts).
 *
 * WATCH: a watched key that anyone changed after WATCH makes EXEC answer nil (a null array).
 * "After WATCH" is "committed after the ts of WATCH's batch" (its commit ts, or its start ts if
 * it wrote nothing). Three checks, together exact:
 *   1. a command of this gateway that changed the key marks the watch dirty as it runs (this
 *      catches changes in the same batch as the EXEC, which are not committed yet);
 *   2. at EXEC, the key's MVCC history (MvccGetByKey) is read: a Put or Delete committed after
 *      the WATCH ts — by any client of the store, through any gateway — aborts;
 *   3. the EXEC's transaction locks the watched keys (an optimistic lock): a write committed
 *      between the EXEC's start ts and its commit makes the commit fail with a write
 *      conflict; the batch runs again, and check 2 then sees that write.
 * A live key that expired since WATCH also aborts (Redis 7 does the same).
 */
import { REDIS_MULTI_MAX_COMMANDS, REDIS_WATCH_MAX_KEYS } from "../../constants.ts";
import { kvrpcpb } from "../../../proto/mod.ts";
import { type CommandContext, type CommandSpec, RedisError } from "./command.ts";
import { runCommand } from "./executor.ts";
import { binaryKey, bytesOfBinaryKey, recordKey } from "./layout.ts";
import { NullArray, OK, type Reply } from "./resp.ts";
import type { QueuedCommand, WatchEntry } from "./session.ts";

async function watch(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const session = ctx.session;
  if (session.watched.size + args.length - 1 > REDIS_WATCH_MAX_KEYS) {
    throw new RedisError(`ERR too many watched keys (a Basalt limit: ${REDIS_WATCH_MAX_KEYS})`);
  }
  for (const key of args.slice(1)) {
    const entry: WatchEntry = {
      session,
      key: binaryKey(key),
      ts: null,
      dirty: false,
      wasLive: (await ctx.ks.record(key)) !== null,
    };
    ctx.gateway.watch(entry);
    ctx.afterCommit((commitTs) => {
      if (entry.ts === null) entry.ts = commitTs;
    });
  }
  return OK;
}

const WRITE_OPS = new Set([kvrpcpb.Op.Put, kvrpcpb.Op.Del]);

/** Whether the watched key of `entry` changed since WATCH (checks 1–3 of the header). */
async function changedSinceWatch(ctx: CommandContext, entry: WatchEntry): Promise<boolean> {
  if (entry.dirty) return true;
  const key = bytesOfBinaryKey(entry.key);
  const raw = await ctx.ks.rawRecord(key);
  if (entry.wasLive && raw !== null && ctx.ks.expired(raw)) return true;
  if (entry.ts === null) return false; // watched in this very batch: check 1 covers it
  await ctx.ks.txn.lockKeys(recordKey(key));
  const info = await ctx.gateway.kv.mvccGetByKey(recordKey(key));
  return (info.writes ?? []).some((write) =>
    WRITE_OPS.has(write.type ?? kvrpcpb.Op.Put) && BigInt(write.commitTs ?? 0) > entry.ts!
  );
}

/** Runs EXEC: the watch checks, then the queued commands; nil when a watched key changed. */
export async function exec(ctx: CommandContext, queued: QueuedCommand[]): Promise<Reply> {
  const session = ctx.session;
  try {
    for (const entry of session.watched.values()) {
      if (await changedSinceWatch(ctx, entry)) return NullArray.instance;
    }
    const replies: Reply[] = [];
    for (const { spec, args } of queued) {
      ctx.ks.nowMs = Date.now();
      replies.push(await runCommand(ctx, (ctx) => spec.run(ctx, args)));
    }
    return replies;
  } finally {
    ctx.gateway.unwatchAll(session);
  }
}

/** Whether another command may be queued in MULTI. */
export function checkQueueRoom(queued: QueuedCommand[]): void {
  if (queued.length >= REDIS_MULTI_MAX_COMMANDS) {
    throw new RedisError(
      `ERR too many commands in MULTI (a Basalt limit: ${REDIS_MULTI_MAX_COMMANDS})`,
    );
  }
}

const transaction = (spec: Omit<CommandSpec, "group" | "keys"> & { keys?: CommandSpec["keys"] }) =>
  ({ group: "transactions", keys: [0, 0, 0], ...spec }) as CommandSpec;

/**
 * The transaction commands. MULTI, EXEC and DISCARD are run by the connection itself
 * (`connection.ts`), which holds the queue; their `run` is never called.
 */
export const TRANSACTION_COMMANDS: CommandSpec[] = [
  transaction({
    name: "watch",
    arity: -2,
    kind: "data",
    flags: ["noscript", "loading", "stale", "fast", "allow_busy"],
    keys: [1, -1, 1],
    since: "2.2.0",
    summary: "Monitors changes to keys to determine the execution of a transaction.",
    run: watch,
  }),
  transaction({
    name: "unwatch",
    arity: 1,
    kind: "control",
    flags: ["noscript", "loading", "stale", "fast", "allow_busy"],
    since: "2.2.0",
    summary: "Forgets about watched keys of a transaction.",
    run: (ctx) => {
      ctx.gateway.unwatchAll(ctx.session);
      return OK;
    },
  }),
  transaction({
    name: "multi",
    arity: 1,
    kind: "local",
    flags: ["noscript", "loading", "stale", "fast", "allow_busy"],
    since: "1.2.0",
    summary: "Starts a transaction.",
    run: () => OK,
  }),
  transaction({
    name: "exec",
    arity: 1,
    kind: "data",
    flags: ["noscript", "loading", "stale", "skip_slowlog"],
    since: "1.2.0",
    summary: "Executes all commands in a transaction.",
    run: () => OK,
  }),
  transaction({
    name: "discard",
    arity: 1,
    kind: "control",
    flags: ["noscript", "loading", "stale", "fast", "allow_busy"],
    since: "2.0.0",
    summary: "Discards a transaction.",
    run: (ctx) => {
      ctx.gateway.unwatchAll(ctx.session);
      return OK;
    },
  }),
];
