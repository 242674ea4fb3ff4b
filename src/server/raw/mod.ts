/** The raw KV API: every raw command, by its kvproto method name. */
import type { AnyCommand } from "../command.ts";
import { rawCompareAndSwap } from "./cas.ts";
import { rawChecksum } from "./checksum.ts";
import { rawBatchDelete, rawDelete } from "./delete.ts";
import { rawDeleteRange } from "./delete_range.ts";
import { rawBatchGet, rawGet } from "./get.ts";
import { rawBatchPut, rawPut } from "./put.ts";
import { rawBatchScan, rawScan } from "./scan.ts";
import { rawGetKeyTtl } from "./ttl.ts";

export { newRawStore, type RawStore } from "./store.ts";

/** Every raw command served. */
export const RAW_COMMANDS: readonly AnyCommand[] = [
  rawGet,
  rawBatchGet,
  rawPut,
  rawBatchPut,
  rawDelete,
  rawBatchDelete,
  rawScan,
  rawBatchScan,
  rawDeleteRange,
  rawGetKeyTtl,
  rawCompareAndSwap,
  rawChecksum,
];
