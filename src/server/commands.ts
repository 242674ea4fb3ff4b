/** Every command the store serves, by gRPC method and by BatchCommands member. */
import type { AnyCommand } from "./command.ts";
import { RAW_COMMANDS } from "./raw/mod.ts";
import { TXN_COMMANDS } from "./txn/mod.ts";
import { splitRegion } from "./split_region.ts";

/** The table the gRPC service and the workers share. */
export const COMMANDS: readonly AnyCommand[] = [...RAW_COMMANDS, ...TXN_COMMANDS, splitRegion];

/** Commands by gRPC method name ("RawGet", "KvPrewrite"). */
export const COMMANDS_BY_NAME: ReadonlyMap<string, AnyCommand> = new Map(
  COMMANDS.map((command) => [command.name, command]),
);

/** Commands by BatchCommands oneof member ("RawGet", "Prewrite"). */
export const COMMANDS_BY_BATCH_NAME: ReadonlyMap<string, AnyCommand> = new Map(
  COMMANDS.flatMap((command) => command.batchName === null ? [] : [[command.batchName, command]]),
);
