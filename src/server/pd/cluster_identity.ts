/**
 * The embedded PD's identity: a cluster id generated on first start and kept for the life of the
 * data directory (every PD response carries it, and clients refuse a PD whose id changed), and
 * the id of its one member.
 *
 * The cluster id is built as PD builds it (`initOrGetClusterID`): the creation time in Unix
 * seconds in the high 32 bits and 32 random bits below, so it is never 0 and two clusters made
 * at different times or by different draws differ.
 *
 * @module
 */
import { parseU64Field, readRecordFile, writeRecordFile } from "../../tso/mod.ts";

/** The persisted identity of a cluster and of this PD member. */
export interface ClusterIdentity {
  clusterId: bigint;
  memberId: bigint;
  /** Unix milliseconds of the first start. */
  createdAtMs: bigint;
}

/** The record format of `<data-dir>/pd/cluster`. */
export const CLUSTER_FILE_FORMAT = "basalt-pd-cluster";

/** A new identity from a clock reading and a 32-bit random source. Pure. */
export function newClusterIdentity(
  options: { nowMs: number; randomUint32: () => number },
): ClusterIdentity {
  const seconds = BigInt(Math.floor(options.nowMs / 1000));
  if (seconds <= 0n || seconds >= 1n << 32n) throw new RangeError(`clock reads ${options.nowMs}`);
  const draw = () => BigInt(options.randomUint32() >>> 0);
  const memberId = (draw() << 32n) | draw();
  return {
    clusterId: (seconds << 32n) + draw(),
    // 0 means "no member" in PD's messages.
    memberId: memberId === 0n ? 1n : memberId,
    createdAtMs: BigInt(options.nowMs),
  };
}

/** Reads the identity at `path`; `null` if absent, `CorruptFileError` if damaged. */
export function loadClusterIdentity(path: string): ClusterIdentity | null {
  const fields = readRecordFile(path, CLUSTER_FILE_FORMAT);
  if (fields === null) return null;
  return {
    clusterId: parseU64Field(path, fields, "clusterId"),
    memberId: parseU64Field(path, fields, "memberId"),
    createdAtMs: parseU64Field(path, fields, "createdAtMs"),
  };
}

/** Writes the identity to `path` durably. */
export function saveClusterIdentity(path: string, identity: ClusterIdentity): void {
  writeRecordFile(path, {
    format: CLUSTER_FILE_FORMAT,
    fields: {
      clusterId: identity.clusterId.toString(),
      memberId: identity.memberId.toString(),
      createdAtMs: identity.createdAtMs.toString(),
    },
  });
}
