/**
 * `basalt-ctl` (`deno task ctl -- …`): the admin CLI.
 *
 * Offline commands work on a stopped store's data directory (`<data-dir>/db` is its RocksDB):
 *   size                 bytes and estimated keys per column family
 *   scan [--cf CF] [--from KEY] [--limit N]   keys and values in order
 *   compact [--cf CF]    full compaction
 * Human output by default, `--json` on request; a failure exits non-zero with one line.
 */
import { parseArgs } from "node:util";
import { RocksDbEngine } from "../src/engine/rocksdb_engine.ts";
import { COLUMN_FAMILIES, type ColumnFamily, isColumnFamily } from "../src/engine/types.ts";
import { fromUtf8, toHex, utf8 } from "../src/util/bytes.ts";

const USAGE = `Usage: basalt-ctl --data-dir DIR <command> [options]

Offline commands (the store must be stopped):
  size                       bytes and estimated keys per column family
  scan [--cf CF] [--from KEY] [--limit N]
                             keys and values in order (default cf: default, limit: 100)
  compact [--cf CF]          compact one column family, or all

Options:
  --data-dir DIR             the store's data directory (holds db/)
  --json                     machine-readable output
  --help                     this text`;

/** A failure the CLI reports in one line. */
class CtlError extends Error {}

/** Printable form of a key or value: text when it is plain ASCII, else hex. */
function printable(bytes: Uint8Array): string {
  const plain = bytes.every((b) => b >= 0x20 && b < 0x7f);
  return plain ? fromUtf8(bytes) : `0x${toHex(bytes)}`;
}

function openStore(dataDir: string | undefined): RocksDbEngine {
  if (!dataDir) throw new CtlError("--data-dir is required for offline commands");
  const dbPath = `${dataDir}/db`;
  try {
    Deno.statSync(`${dbPath}/CURRENT`);
  } catch {
    throw new CtlError(`${dataDir} holds no Basalt store (no ${dbPath}/CURRENT)`);
  }
  return RocksDbEngine.open(dbPath, { createIfMissing: false, blockCacheBytes: 8 << 20 });
}

function columnFamilies(cf: string | undefined): readonly ColumnFamily[] {
  if (cf === undefined) return COLUMN_FAMILIES;
  if (!isColumnFamily(cf)) {
    throw new CtlError(`unknown column family "${cf}"; one of ${COLUMN_FAMILIES.join(", ")}`);
  }
  return [cf];
}

function size(engine: RocksDbEngine, json: boolean): void {
  const rows = COLUMN_FAMILIES.map((cf) => ({
    cf,
    sstBytes: Number(engine.property(cf, "rocksdb.total-sst-files-size") ?? 0),
    memtableBytes: Number(engine.property(cf, "rocksdb.cur-size-all-mem-tables") ?? 0),
    estimatedKeys: Number(engine.property(cf, "rocksdb.estimate-num-keys") ?? 0),
  }));
  if (json) return console.log(JSON.stringify(rows));
  console.log("cf       sst bytes      memtable bytes  estimated keys");
  for (const r of rows) {
    console.log(
      `${r.cf.padEnd(8)} ${String(r.sstBytes).padStart(12)}  ${
        String(r.memtableBytes).padStart(14)
      }  ${String(r.estimatedKeys).padStart(14)}`,
    );
  }
}

function scan(
  engine: RocksDbEngine,
  options: { cf: ColumnFamily; from?: string; limit: number; json: boolean },
): void {
  const iterator = engine.iterator(options.cf);
  try {
    if (options.from === undefined) iterator.seekToFirst();
    else iterator.seek(utf8(options.from));
    for (let n = 0; n < options.limit && iterator.valid(); n++, iterator.next()) {
      const key = iterator.key();
      const value = iterator.value();
      if (options.json) console.log(JSON.stringify({ key: toHex(key), value: toHex(value) }));
      else console.log(`${printable(key)} => ${printable(value)}`);
    }
  } finally {
    iterator.close();
  }
}

function run(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "data-dir": { type: "string" },
      cf: { type: "string" },
      from: { type: "string" },
      limit: { type: "string", default: "100" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined) return console.log(USAGE);
  if (!["size", "scan", "compact"].includes(command)) {
    throw new CtlError(`unknown command "${command}" (try --help)`);
  }
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 0) throw new CtlError(`--limit must be a count`);
  const families = columnFamilies(values.cf);
  const engine = openStore(values["data-dir"]);
  try {
    if (command === "size") size(engine, values.json!);
    else if (command === "scan") {
      scan(engine, { cf: families[0]!, from: values.from, limit, json: values.json! });
    } else {
      for (const cf of families) engine.compactRange(cf);
      console.log(values.json ? JSON.stringify({ compacted: families }) : "compacted");
    }
  } finally {
    engine.close();
  }
}

if (import.meta.main) {
  try {
    run(Deno.args);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`basalt-ctl: ${message.split("\n")[0]}`);
    Deno.exit(1);
  }
}
