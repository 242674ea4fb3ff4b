/**
 * The raw KV API: every raw command, by its kvproto method name (which is also its
 * BatchCommands oneof member), and the edge that runs them.
 */
import type { AnyRawCommand } from "./command.ts";
import { rawCompareAndSwap } from "./cas.ts";
import { rawChecksum } from "./checksum.ts";
import { rawBatchDelete, rawDelete } from "./delete.ts";
import { rawDeleteRange } from "./delete_range.ts";
import { rawBatchGet, rawGet } from "./get.ts";
import { rawBatchPut, rawPut } from "./put.ts";
import { rawBatchScan, rawScan } from "./scan.ts";
import { rawGetKeyTtl } from "./ttl.ts";

export type { AnyRawCommand, MessageCodec, RawCommand } from "./command.ts";
export { type RawServices, runRawCommand } from "./respond.ts";
export { newRawStore, type RawStore } from "./store.ts";

/** Every raw command served. */
export const RAW_COMMANDS: readonly AnyRawCommand[] = [
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

/** Raw commands by name. */
export const RAW_COMMANDS_BY_NAME: ReadonlyMap<string, AnyRawCommand> = new Map(
  RAW_COMMANDS.map((command) => [command.name, command]),
);
