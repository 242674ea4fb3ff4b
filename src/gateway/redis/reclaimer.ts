/**
 * The background reclaimer: every REDIS_RECLAIM_INTERVAL_MS, one executor job deletes up to
 * REDIS_RECLAIM_BATCH_KEYS expired keys, found by a scan of the expiry index from its start
 * (the earliest expiries) to now. Readers never need it — an expired record reads as absent
 * already — it gives the space back.
 */
import { REDIS_RECLAIM_BATCH_KEYS } from "../../constants.ts";
import { assert } from "../../util/assert.ts";
import type { CommandContext } from "./command.ts";
import { decodeExpiryKey, expiryRange } from "./layout.ts";

/** One round: deletes expired keys; resolves with how many it deleted. */
export async function reclaimExpired(ctx: CommandContext): Promise<number> {
  const { start, end } = expiryRange(ctx.ks.nowMs + 1);
  const page = await ctx.ks.txn.scan(start, end, {
    limit: REDIS_RECLAIM_BATCH_KEYS,
    keyOnly: true,
  });
  let deleted = 0;
  for (const pair of page) {
    const { expireAtMs, key } = decodeExpiryKey(pair.key);
    const record = await ctx.ks.rawRecord(key);
    // layout.ts: an index entry exists only with a record of the same expiry.
    assert(record !== null && record.expireAtMs === expireAtMs, "expiry index follows records", {
      expireAtMs,
      recordExpireAtMs: record?.expireAtMs ?? null,
    });
    // Not a change a WATCH sees: the key read as absent already (Redis 7 the same).
    await ctx.ks.delete(key, { touch: false });
    deleted++;
  }
  ctx.afterCommit(() => ctx.gateway.stats.expiredKeys += deleted);
  return deleted;
}
