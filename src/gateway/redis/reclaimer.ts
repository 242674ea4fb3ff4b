/**
 * The background reclaimer: every REDIS_RECLAIM_INTERVAL_MS, a snapshot scan of the expiry
 * index from its start (the earliest expiries) to now finds up to REDIS_RECLAIM_BATCH_KEYS
 * expired keys; when it found any, one executor job ordered on those keys deletes the ones
 * still expired. Readers never need it — an expired record reads as absent already — it gives
 * the space back.
 *
 * Why the scan runs outside the executor: a job that may touch any key is ordered after and
 * before every other job (`job_order.ts`), so a job scanning the index every 100 ms would stop
 * all running batches ten times a second, even with nothing to delete. The scan's snapshot may
 * be stale by the time the job runs (a key rewritten, persisted, deleted meanwhile), so the job
 * reads each record again in its transaction and deletes only what is still expired.
 */
import { REDIS_RECLAIM_BATCH_KEYS } from "../../constants.ts";
import type { TxnKV } from "../../client/mod.ts";
import type { CommandContext } from "./command.ts";
import { decodeExpiryKey, expiryRange } from "./layout.ts";

/** Keys whose expiry-index entries say they expired before `nowMs` (at most a batch). */
export async function findExpired(kv: TxnKV, nowMs: number): Promise<Uint8Array[]> {
  const { start, end } = expiryRange(nowMs + 1);
  const snapshot = await kv.snapshot();
  const page = await snapshot.scan(start, end, { limit: REDIS_RECLAIM_BATCH_KEYS, keyOnly: true });
  return page.map((pair) => decodeExpiryKey(pair.key).key.slice());
}

/** Deletes those of `keys` that are expired now; resolves with how many it deleted. */
export async function reclaimExpired(ctx: CommandContext, keys: Uint8Array[]): Promise<number> {
  let deleted = 0;
  for (const key of keys) {
    const record = await ctx.ks.rawRecord(key);
    if (record === null || !ctx.ks.expired(record)) continue;
    // Not a change a WATCH sees: the key read as absent already (Redis 7 the same).
    await ctx.ks.delete(key, { touch: false });
    deleted++;
  }
  ctx.afterCommit(() => ctx.gateway.stats.expiredKeys += deleted);
  return deleted;
}
