/**
 * Where the last real change (a Put or Delete) of a key is, relative to a record (TiKV
 * `LastChange`). Lock and write records may carry it so a reader can skip a run of `Lock`
 * versions; Basalt keeps it in the record formats for compatibility and writes it where TiKV
 * does.
 *
 * On disk it is the pair (`lastChangeTs`, `estimatedVersionsToLastChange`): (0, 0) is Unknown,
 * (0, n>0) is NotExist, (ts>0, n) is Exist.
 *
 * @module
 */

import type { TimeStamp } from "./timestamp.ts";
import { assert } from "../util/assert.ts";

/** The last change of a key as a record knows it. */
export type LastChange =
  | { kind: "Unknown" }
  /** The key has no earlier Put, or its latest change is a Delete. */
  | { kind: "NotExist" }
  | {
    kind: "Exist";
    /** Commit ts of the latest Put or Delete. */
    lastChangeTs: TimeStamp;
    /** Estimated versions to skip from this record to reach it (may be inaccurate). */
    estimatedVersionsToLastChange: bigint;
  };

/** The Unknown last change, the default of every record. */
export const LAST_CHANGE_UNKNOWN: LastChange = Object.freeze({ kind: "Unknown" });

/** The on-disk pair of a last change. */
export function lastChangeToParts(change: LastChange): [TimeStamp, bigint] {
  switch (change.kind) {
    case "Unknown":
      return [0n, 0n];
    case "NotExist":
      return [0n, 1n];
    case "Exist":
      assert(change.lastChangeTs !== 0n, "a last change that exists has a commit ts");
      return [change.lastChangeTs, change.estimatedVersionsToLastChange];
  }
}

/** The last change of an on-disk pair. */
export function lastChangeFromParts(ts: TimeStamp, versions: bigint): LastChange {
  if (ts === 0n) return versions > 0n ? { kind: "NotExist" } : LAST_CHANGE_UNKNOWN;
  return { kind: "Exist", lastChangeTs: ts, estimatedVersionsToLastChange: versions };
}
