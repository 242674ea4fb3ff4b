/**
 * Bounds of the embedded PD. They sit beside it rather than in `src/constants.ts` only because
 * that file has another owner today; relations are asserted when this module loads.
 */

/** Ids reserved per persisted window of the id allocator (PD's `allocStep`). */
export const PD_ID_ALLOC_STEP = 1_000n;
/** Most ids one AllocID request may take. */
export const PD_ID_ALLOC_MAX_COUNT = 1 << 20;
/** Most regions one ScanRegions answer carries, whatever `limit` asks for. */
export const PD_SCAN_REGIONS_MAX_LIMIT = 64 * 1024;

if (PD_ID_ALLOC_STEP < 1n || BigInt(PD_ID_ALLOC_MAX_COUNT) > (1n << 32n) - 1n) {
  throw new Error("server/pd/constants.ts: the alloc step and batch must fit AllocID's u32 count");
}
