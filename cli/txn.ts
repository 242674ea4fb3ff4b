/**
 * `basalt-ctl --host ADDR txn …` and `mvcc KEY`: transactional commands against a running store
 * through the `TxnKV` client (timestamps from the store's PD face, or from `--pd`).
 *
 *   txn get KEY                   the value at a fresh snapshot, or "(not found)"
 *   txn put KEY VALUE             one transaction writing KEY; prints the commit ts
 *   txn delete KEY                one transaction deleting KEY; prints the commit ts
 *   txn scan [START] [END] [--limit N] [--key-only]
 *   mvcc KEY                      every lock, write record and value of KEY (MvccGetByKey)
 *
 * Each txn command is one transaction; a write conflict is retried (the command's intent is
 * "set it now"). Timestamps print as the TSO number with its physical time.
 */
import type { kvrpcpb } from "../proto/mod.ts";
import { physicalOf } from "../src/client/tso.ts";
import { TxnKV } from "../src/client/txn/mod.ts";
import { kvrpcpb as protocol } from "../proto/mod.ts";
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
import { argumentBytes, type Encoding, humanBytes, jsonBytes } from "./output.ts";

/** Flags of the transactional commands. */
export type TxnCommandOptions = ClientCommandOptions;

const TXN_COMMANDS: Record<string, SubcommandSpec> = {
  get: { min: 1, max: 1, usage: "txn get KEY" },
  put: { min: 2, max: 2, usage: "txn put KEY VALUE" },
  delete: { min: 1, max: 1, usage: "txn delete KEY" },
  scan: { min: 0, max: 2, usage: "txn scan [START] [END] [--limit N] [--key-only]" },
};

/** Longest value shown in full by `mvcc` (human output); longer ones are cut. */
const MVCC_VALUE_PREVIEW_BYTES = 64;

/** A `TxnKV` of `--pd` or `--host`; an unreachable store or PD is a one-line `CtlError`. */
export async function connect(options: TxnCommandOptions): Promise<TxnKV> {
  const { timeoutMs } = options;
  if (options.pd === undefined && options.host === undefined) {
    throw new CtlError("transactional commands need --host ADDR (a store) or --pd ADDR");
  }
  const address = options.pd !== undefined ? `PD ${options.pd}` : options.host!;
  const transport = { tls: options.tls };
  try {
    return options.pd !== undefined
      ? await TxnKV.connect({ pd: pdEndpoints(options.pd), timeoutMs, transport })
      : await TxnKV.connect({ host: options.host!, timeoutMs, transport });
  } catch (error) {
    throw unreachable(error, { address, timeoutMs });
  }
}

/** A timestamp as "TS (ISO time)". */
export function describeTs(ts: bigint | number | null | undefined): string {
  const value = BigInt(ts ?? 0);
  if (value === 0n) return "0";
  const physical = physicalOf(value);
  const time = Number.isFinite(physical) && physical < 8.64e15
    ? new Date(physical).toISOString()
    : "?";
  return `${value} (${time})`;
}

/** Runs `txn <subcommand> args…`. */
export async function runTxn(args: readonly string[], options: TxnCommandOptions): Promise<void> {
  const { subcommand, operands } = pickSubcommand(args, {
    group: "txn",
    subcommands: TXN_COMMANDS,
  });
  const [first = new Uint8Array(0), second = new Uint8Array(0)] = operands.map((operand) =>
    argumentBytes(operand, options)
  );
  const key = jsonBytes(first, options);
  await withClient(() => connect(options), async (client) => {
    switch (subcommand) {
      case "get": {
        const txn = await client.begin();
        const value = await txn.get(first);
        await txn.rollback();
        if (value === null) return print(options, "(not found)", { key, found: false });
        return print(options, humanBytes(value, options), {
          key,
          found: true,
          value: jsonBytes(value, options),
          readTs: String(txn.startTs),
        });
      }
      case "put":
      case "delete": {
        let commitTs = 0n;
        await client.withRetry(async (txn) => {
          if (subcommand === "put") txn.set(first, second);
          else txn.delete(first);
          commitTs = (await txn.commit()).commitTs;
        });
        return print(options, `OK (committed at ${describeTs(commitTs)})`, {
          key,
          ok: true,
          commitTs: String(commitTs),
        });
      }
      case "scan":
        return await scan(client, { start: first, end: second, options });
    }
  });
}

async function scan(
  client: TxnKV,
  range: { start: Uint8Array; end: Uint8Array; options: TxnCommandOptions },
): Promise<void> {
  const { options } = range;
  const txn = await client.begin();
  const pairs = await txn.scan(range.start, range.end, {
    limit: options.limit,
    keyOnly: options.keyOnly,
  });
  await txn.rollback();
  printPairs(pairs, options);
}

/** Runs `mvcc KEY`. */
export async function runMvcc(args: readonly string[], options: TxnCommandOptions): Promise<void> {
  if (args.length !== 1) throw new CtlError("usage: basalt-ctl --host ADDR mvcc KEY");
  const key = argumentBytes(args[0]!, options);
  await withClient(() => connect(options), async (client) => {
    const info = await client.mvccGetByKey(key);
    if (options.json) return console.log(JSON.stringify(mvccJson(key, info, options)));
    console.log(renderMvcc(key, info, options).join("\n"));
  });
}

const opName = (op: kvrpcpb.Op | null | undefined) => protocol.Op[op ?? 0] ?? String(op);

function preview(bytes: Uint8Array | null | undefined, encoding: Encoding): string {
  const value = bytes ?? new Uint8Array(0);
  if (value.length <= MVCC_VALUE_PREVIEW_BYTES) return JSON.stringify(humanBytes(value, encoding));
  const head = humanBytes(value.subarray(0, MVCC_VALUE_PREVIEW_BYTES), encoding);
  return `${JSON.stringify(head)}… (${value.length} bytes)`;
}

/** The human form of a key's MVCC records: lock, writes newest first, values. */
export function renderMvcc(
  key: Uint8Array,
  info: kvrpcpb.MvccInfo.$Properties,
  encoding: Encoding,
): string[] {
  const lines = [`key ${JSON.stringify(humanBytes(key, encoding))}`];
  const lock = info.lock;
  if (lock == null) lines.push("lock: none");
  else {
    const traits = [
      `primary ${JSON.stringify(humanBytes(lock.primary ?? new Uint8Array(0), encoding))}`,
      `ttl ${lock.ttl ?? 0n} ms`,
    ];
    if ((lock.forUpdateTs ?? 0n) !== 0n) traits.push(`for_update_ts ${lock.forUpdateTs}`);
    if ((lock.txnSize ?? 0n) !== 0n) traits.push(`txn size ${lock.txnSize}`);
    if (lock.useAsyncCommit) {
      traits.push(`async commit, ${lock.secondaries?.length ?? 0} secondaries`);
    }
    if ((lock.shortValue?.length ?? 0) > 0) {
      traits.push(`value ${preview(lock.shortValue, encoding)}`);
    }
    lines.push(`lock: ${opName(lock.type)} by txn ${describeTs(lock.startTs)}`);
    lines.push(`      ${traits.join(", ")}`);
  }
  const writes = info.writes ?? [];
  lines.push(writes.length === 0 ? "writes: none" : "writes (newest first):");
  for (const write of writes) {
    const extras = [];
    if ((write.shortValue?.length ?? 0) > 0) {
      extras.push(`value ${preview(write.shortValue, encoding)}`);
    }
    if (write.hasOverlappedRollback) extras.push("overlapped rollback");
    if (write.hasGcFence) extras.push(`gc fence ${write.gcFence}`);
    lines.push(
      `  ${opName(write.type).padEnd(8)} commit ${describeTs(write.commitTs)}  start ${
        describeTs(write.startTs)
      }${extras.length > 0 ? `  ${extras.join(", ")}` : ""}`,
    );
  }
  const values = info.values ?? [];
  if (values.length > 0) lines.push("values (default CF):");
  for (const value of values) {
    lines.push(`  start ${describeTs(value.startTs)}  ${preview(value.value, encoding)}`);
  }
  return lines;
}

/** The JSON form of a key's MVCC records (timestamps as decimal strings). */
export function mvccJson(
  key: Uint8Array,
  info: kvrpcpb.MvccInfo.$Properties,
  encoding: Encoding,
): unknown {
  const bytes = (value: Uint8Array | null | undefined) =>
    jsonBytes(value ?? new Uint8Array(0), encoding);
  const lock = info.lock;
  return {
    key: bytes(key),
    lock: lock == null ? null : {
      type: opName(lock.type),
      startTs: String(lock.startTs ?? 0n),
      primary: bytes(lock.primary),
      ttlMs: Number(lock.ttl ?? 0n),
      forUpdateTs: String(lock.forUpdateTs ?? 0n),
      txnSize: Number(lock.txnSize ?? 0n),
      useAsyncCommit: lock.useAsyncCommit ?? false,
      secondaries: (lock.secondaries ?? []).map(bytes),
      shortValue: bytes(lock.shortValue),
    },
    writes: (info.writes ?? []).map((write) => ({
      type: opName(write.type),
      startTs: String(write.startTs ?? 0n),
      commitTs: String(write.commitTs ?? 0n),
      shortValue: bytes(write.shortValue),
      hasOverlappedRollback: write.hasOverlappedRollback ?? false,
      gcFence: write.hasGcFence ? String(write.gcFence ?? 0n) : null,
    })),
    values: (info.values ?? []).map((value) => ({
      startTs: String(value.startTs ?? 0n),
      value: bytes(value.value),
    })),
  };
}
