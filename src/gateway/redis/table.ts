/** The command table: every command the gateway knows, by lower-case name. */
import type { CommandSpec } from "./command.ts";
import { HASH_COMMANDS } from "./hashes.ts";
import { KEY_COMMANDS } from "./keys.ts";
import { COMMAND_TABLE, SERVER_COMMANDS } from "./server_commands.ts";
import { STRING_COMMANDS } from "./strings.ts";
import { TRANSACTION_COMMANDS } from "./transactions.ts";

for (
  const spec of [
    ...STRING_COMMANDS,
    ...KEY_COMMANDS,
    ...HASH_COMMANDS,
    ...TRANSACTION_COMMANDS,
    ...SERVER_COMMANDS,
  ]
) {
  if (COMMAND_TABLE.has(spec.name)) throw new Error(`command ${spec.name} is defined twice`);
  COMMAND_TABLE.set(spec.name, spec);
}

/** The command named `name` (any case), or undefined. */
export function lookupCommand(name: string): CommandSpec | undefined {
  return COMMAND_TABLE.get(name.toLowerCase());
}

export { COMMAND_TABLE };
