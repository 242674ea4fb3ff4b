/**
 * What the online command groups share — `raw` (`online.ts`) and `txn`/`mvcc` (`txn.ts`): the
 * flags every client takes, picking a subcommand and checking its operand count, one-line
 * reasons for a store or PD that cannot be reached, running a client and closing it, and the
 * human or JSON output of results and key-value pairs.
 *
 * Invariant: every failure a client reports leaves here as one `CtlError` line; anything else
 * (a bug) goes up unchanged.
 */
import { ClientError, DeadlineExceededError } from "../src/client/errors.ts";
import { TxnError } from "../src/client/txn/errors.ts";
import type { TlsIdentity } from "../src/security/tls.ts";
import { CtlError } from "./ctl_error.ts";
import { type Encoding, humanBytes, jsonBytes } from "./output.ts";

/** Flags every online command takes. */
export interface ClientCommandOptions extends Encoding {
  host?: string;
  /** PD endpoints, comma-separated. */
  pd?: string;
  limit: number;
  keyOnly: boolean;
  json: boolean;
  timeoutMs: number;
  /** Mutual TLS (`--ca-path --cert-path --key-path`); plain text when null. */
  tls: TlsIdentity | null;
}

/** How many operands a subcommand takes, and its usage line. */
export interface SubcommandSpec {
  min: number;
  max: number;
  usage: string;
}

/**
 * The subcommand `args` names within `group` (`raw`, `txn`) and its operands; an unknown name
 * or a wrong operand count is a `CtlError`.
 *
 * @example
 * ```ts
 * const { subcommand, operands } = pickSubcommand(["get", "k"], {
 *   group: "raw",
 *   subcommands: { get: { min: 1, max: 1, usage: "raw get KEY" } },
 * });
 * ```
 */
export function pickSubcommand(
  args: readonly string[],
  of: { group: string; subcommands: Record<string, SubcommandSpec> },
): { subcommand: string; operands: string[] } {
  const [subcommand, ...operands] = args;
  const spec = subcommand === undefined ? undefined : of.subcommands[subcommand];
  if (spec === undefined) {
    const names = Object.keys(of.subcommands).join(", ");
    throw new CtlError(`unknown ${of.group} command "${subcommand ?? ""}"; one of ${names}`);
  }
  if (operands.length < spec.min || operands.length > spec.max) {
    throw new CtlError(`usage: basalt-ctl --host ADDR ${spec.usage}`);
  }
  return { subcommand: subcommand!, operands };
}

/** The endpoints of a comma-separated `--pd` list. */
export function pdEndpoints(list: string): string[] {
  return list.split(",").filter((endpoint) => endpoint !== "");
}

/** The one-line reason a store or PD at `address` could not be used. */
export function unreachable(
  error: unknown,
  where: { address: string; timeoutMs: number },
): CtlError {
  const { address, timeoutMs } = where;
  const message = error instanceof Error ? error.message : String(error);
  if (/ECONNREFUSED/.test(message)) {
    return new CtlError(`cannot reach ${address}: connection refused`);
  }
  if (error instanceof DeadlineExceededError) {
    return new CtlError(`cannot reach ${address}: no answer within ${timeoutMs} ms`);
  }
  return new CtlError(`cannot reach ${address}: ${message.split("\n")[0]}`);
}

/**
 * Connects, runs `work` with the client, turns the client's own failures (`ClientError`,
 * `TxnError`) into one-line CLI errors, and closes the client whatever happened.
 */
export async function withClient<Client extends { close(): void | Promise<void> }>(
  connect: () => Promise<Client>,
  work: (client: Client) => Promise<void>,
): Promise<void> {
  const client = await connect();
  try {
    await work(client);
  } catch (error) {
    if (error instanceof ClientError || error instanceof TxnError) {
      throw new CtlError(error.message.split("\n")[0]);
    }
    throw error;
  } finally {
    await client.close();
  }
}

/** Prints one result: `human` by default, `json` (one line) with `--json`. */
export function print(options: { json: boolean }, human: string, json: unknown): void {
  console.log(options.json ? JSON.stringify(json) : human);
}

/**
 * Prints scanned pairs one a line: `key => value`, the key alone with `--key-only`, a JSON
 * object a line with `--json`. An empty human listing says so on stderr.
 */
export function printPairs(
  pairs: readonly { key: Uint8Array; value: Uint8Array }[],
  options: Encoding & { json: boolean; keyOnly: boolean },
): void {
  for (const pair of pairs) {
    if (options.json) {
      const entry: Record<string, string> = { key: jsonBytes(pair.key, options) };
      if (!options.keyOnly) entry.value = jsonBytes(pair.value, options);
      console.log(JSON.stringify(entry));
    } else if (options.keyOnly) console.log(humanBytes(pair.key, options));
    else console.log(`${humanBytes(pair.key, options)} => ${humanBytes(pair.value, options)}`);
  }
  if (!options.json && pairs.length === 0) console.error("(no keys)");
}
