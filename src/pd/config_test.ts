/** PD's scheduling settings: defaults as PD's, and each setting's range. */
import assert from "node:assert/strict";
import { DEFAULT_SCHEDULE_CONFIG, scheduleConfig } from "./config.ts";

Deno.test("schedule settings: merge sizes, interval and limit may be 0 (off); the rest must be positive; one-way merge is a boolean", () => {
  const off = scheduleConfig({
    maxMergeRegionSizeMb: 0,
    maxMergeRegionKeys: 0,
    splitMergeIntervalMs: 0,
    mergeScheduleLimit: 0,
  });
  assert.equal(off.mergeScheduleLimit, 0);
  assert.equal(off.enableOneWayMerge, DEFAULT_SCHEDULE_CONFIG.enableOneWayMerge);
  assert.throws(() => scheduleConfig({ regionScheduleLimit: 0 }), /regionScheduleLimit/);
  assert.throws(() => scheduleConfig({ maxMergeRegionSizeMb: -1 }), /maxMergeRegionSizeMb/);
  assert.throws(() => scheduleConfig({ mergeScheduleLimit: 0.5 }), /mergeScheduleLimit/);
  assert.throws(
    () => scheduleConfig({ enableOneWayMerge: 1 as unknown as boolean }),
    /enableOneWayMerge must be true or false/,
  );
});
