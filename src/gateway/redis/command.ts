/**
 * What a Redis command is to the gateway: its table entry (name, arity, key positions, flags —
 * what COMMAND INFO reports), where it runs, and the context it runs in.
 *
 * Where commands run: `data` commands run in the executor (`executor.ts`), in order with every
 * other connection's, inside a Basalt transaction (`ctx.ks`); `control` commands run in the
 * executor too but need no transaction (UNWATCH, DISCARD: they must stay in order with WATCH and
 * EXEC); `local` commands run on the connection when their turn to answer comes (PING, HELLO,
 * CLIENT …), so a pipeline's replies keep their order and HELLO changes the protocol of the
 * replies after its own.
 */
import type { Keyspace } from "./keyspace.ts";
import type { Reply } from "./resp.ts";
import type { GatewayState } from "./state.ts";
import type { Session } from "./session.ts";

/** An error reply a command answers with; `message` is the whole text (`ERR …`). */
export class RedisError extends Error {
  constructor(text: string) {
    super(text);
    this.name = "RedisError";
  }
}

/** Redis's error texts shared by many commands. */
export const ERRORS = {
  wrongType: "WRONGTYPE Operation against a key holding the wrong kind of value",
  notInteger: "ERR value is not an integer or out of range",
  notFloat: "ERR value is not a valid float",
  syntax: "ERR syntax error",
  overflow: "ERR increment or decrement would overflow",
  noSuchKey: "ERR no such key",
  tooBig: "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
  dbIndex: "ERR DB index is out of range",
} as const;

/** Everything a command may use while it runs. */
export interface CommandContext {
  /** The transaction's view of the keyspace (data commands only). */
  ks: Keyspace;
  session: Session;
  gateway: GatewayState;
  /** Runs `fn` with the batch's commit ts once its transaction committed. */
  afterCommit(fn: (commitTs: bigint) => void): void;
}

/** Where a command runs (see the module header). */
export type CommandKind = "data" | "control" | "local";

/** One command of the table. */
export interface CommandSpec {
  /** Lower case. */
  name: string;
  /** Redis's arity: N = exactly N arguments with the name, -N = at least N. */
  arity: number;
  kind: CommandKind;
  /** COMMAND INFO's flags, e.g. `["write", "denyoom"]`. */
  flags: string[];
  /** Positions of the first and last key and the step between keys (0, 0, 0: none). */
  keys: [first: number, last: number, step: number];
  /** COMMAND DOCS's group and summary. */
  group: string;
  summary: string;
  since: string;
  /** Storage keys to read in the batch's first request, beyond the records of its keys. */
  prefetch?: (args: Uint8Array[]) => Uint8Array[];
  run(ctx: CommandContext, args: Uint8Array[]): Reply | Promise<Reply>;
}

/** The key arguments of `args` under `spec`'s key positions. */
export function keyArgs(spec: CommandSpec, args: Uint8Array[]): Uint8Array[] {
  const [first, lastSpec, step] = spec.keys;
  if (first === 0) return [];
  const last = lastSpec < 0 ? args.length + lastSpec : lastSpec;
  const out: Uint8Array[] = [];
  for (let at = first; at <= last && at < args.length; at += step) out.push(args[at]!);
  return out;
}

const decoder = new TextDecoder();

/** An argument as text (option names, numbers). */
export function text(arg: Uint8Array): string {
  return decoder.decode(arg);
}

/** An argument upper-cased, for option matching. */
export function upper(arg: Uint8Array): string {
  return text(arg).toUpperCase();
}
