/**
 * `basalt-ctl --host ADDR raw …` (or `--pd ADDR raw …`): raw key-value commands against a
 * running store through the `RawKV` client.
 *
 *   get KEY                       the value, or "(not found)"
 *   put KEY VALUE [--ttl S]       store a value, optionally expiring after S seconds
 *   delete KEY                    remove a key
 *   scan [START] [END] [--limit N] [--reverse] [--key-only]
 *   ttl KEY                       seconds left to live, "no TTL", or "(not found)"
 *   checksum [START END]          CRC-64 XOR checksum, pair count and bytes of a range
 */
import { ClientError, RawKV } from "../src/client/mod.ts";
import {
  type ClientCommandOptions,
  pdEndpoints,
  pickSubcommand,
  print,
  printPairs,
  type SubcommandSpec,
  unreachable,
  withClient,
} from "./client_command.ts";
import { CtlError } from "./ctl_error.ts";
import { argumentBytes, humanBytes, jsonBytes } from "./output.ts";

/** Flags of the online commands. */
export interface OnlineOptions extends ClientCommandOptions {
  cf?: string;
  ttl?: string;
  reverse: boolean;
}

const RAW_COMMANDS: Record<string, SubcommandSpec> = {
  get: { min: 1, max: 1, usage: "raw get KEY" },
  put: { min: 2, max: 2, usage: "raw put KEY VALUE [--ttl S]" },
  delete: { min: 1, max: 1, usage: "raw delete KEY" },
  scan: { min: 0, max: 2, usage: "raw scan [START] [END] [--limit N] [--reverse] [--key-only]" },
  ttl: { min: 1, max: 1, usage: "raw ttl KEY" },
  checksum: { min: 0, max: 2, usage: "raw checksum [START END]" },
};

/** A `RawKV` of `--pd` or `--host`; an unreachable store or PD is a one-line `CtlError`. */
export async function connect(options: OnlineOptions): Promise<RawKV> {
  const { timeoutMs } = options;
  const transport = { tls: options.tls };
  if (options.pd !== undefined) {
    try {
      return await RawKV.connect({
        pd: pdEndpoints(options.pd),
        timeoutMs,
        cf: options.cf,
        transport,
      });
    } catch (error) {
      throw unreachable(error, { address: `PD ${options.pd}`, timeoutMs });
    }
  }
  if (options.host === undefined) {
    throw new CtlError("online commands need --host ADDR (a store) or --pd ADDR");
  }
  const client = await RawKV.connect({ host: options.host, timeoutMs, cf: options.cf, transport });
  // One round trip first, so an unreachable store is reported at once rather than retried
  // until the deadline.
  try {
    await client.connections.get(options.host).send("Empty", {}, { timeoutMs });
  } catch (error) {
    if (!(error instanceof ClientError && error.code === "Unsupported")) {
      client.close();
      throw unreachable(error, { address: options.host, timeoutMs });
    }
  }
  return client;
}

function ttlSeconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new CtlError(`--ttl must be a whole number of seconds, not "${text}"`);
  }
  return seconds;
}

/** Runs `raw <subcommand> args…`. */
export async function runRaw(args: readonly string[], options: OnlineOptions): Promise<void> {
  const { subcommand, operands } = pickSubcommand(args, {
    group: "raw",
    subcommands: RAW_COMMANDS,
  });
  const bytes = operands.map((operand) => argumentBytes(operand, options));
  await withClient(
    () => connect(options),
    (client) => execute(client, { subcommand, bytes, options }),
  );
}

async function execute(
  client: RawKV,
  command: { subcommand: string; bytes: Uint8Array[]; options: OnlineOptions },
): Promise<void> {
  const { bytes, options } = command;
  const [first = new Uint8Array(0), second = new Uint8Array(0)] = bytes;
  const key = jsonBytes(first, options);
  switch (command.subcommand) {
    case "get": {
      const value = await client.get(first);
      if (value === null) return print(options, "(not found)", { key, found: false });
      return print(options, humanBytes(value, options), {
        key,
        found: true,
        value: jsonBytes(value, options),
      });
    }
    case "put":
      await client.put(first, second, { ttlSeconds: ttlSeconds(options.ttl) });
      return print(options, "OK", { key, ok: true });
    case "delete":
      await client.delete(first);
      return print(options, "OK", { key, ok: true });
    case "ttl": {
      const ttl = await client.getKeyTTL(first);
      if (ttl === null) return print(options, "(not found)", { key, found: false });
      return print(options, ttl === 0 ? "no TTL" : `${ttl} s`, {
        key,
        found: true,
        ttlSeconds: ttl,
      });
    }
    case "scan":
      return await scan(client, { start: first, end: second, options });
    case "checksum": {
      const sum = await client.checksum(first, second);
      const checksum = `0x${sum.checksum.toString(16).padStart(16, "0")}`;
      return print(
        options,
        `checksum ${checksum}  kvs ${sum.totalKvs}  bytes ${sum.totalBytes}`,
        { checksum, totalKvs: Number(sum.totalKvs), totalBytes: Number(sum.totalBytes) },
      );
    }
  }
}

async function scan(
  client: RawKV,
  range: { start: Uint8Array; end: Uint8Array; options: OnlineOptions },
): Promise<void> {
  const { options } = range;
  const scanOptions = { limit: options.limit, keyOnly: options.keyOnly };
  const pairs = options.reverse
    ? await client.reverseScan(range.start, range.end, scanOptions)
    : await client.scan(range.start, range.end, scanOptions);
  printPairs(pairs, options);
}
