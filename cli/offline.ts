/**
 * Offline commands of `basalt-ctl`, on a stopped store's data directory (`<data-dir>/db` is its
 * RocksDB):
 *   size                 bytes and estimated keys per column family
 *   scan [--cf CF] [--from KEY] [--limit N]   keys and values in order
 *   compact [--cf CF]    full compaction
 */
import { RocksDbEngine } from "../src/engine/rocksdb_engine.ts";
import { COLUMN_FAMILIES, type ColumnFamily, isColumnFamily } from "../src/engine/types.ts";
import { toHex, utf8 } from "../src/util/bytes.ts";
import { CtlError } from "./ctl_error.ts";
import { printable } from "./output.ts";

/** The offline commands. */
export const OFFLINE_COMMANDS = ["size", "scan", "compact"] as const;

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

/** Runs offline `command` on the store in `dataDir`. */
export function runOffline(
  command: typeof OFFLINE_COMMANDS[number],
  options: { dataDir?: string; cf?: string; from?: string; limit: number; json: boolean },
): void {
  const families = columnFamilies(options.cf);
  const engine = openStore(options.dataDir);
  try {
    if (command === "size") size(engine, options.json);
    else if (command === "scan") {
      scan(engine, {
        cf: families[0]!,
        from: options.from,
        limit: options.limit,
        json: options.json,
      });
    } else {
      for (const cf of families) engine.compactRange(cf);
      console.log(options.json ? JSON.stringify({ compacted: families }) : "compacted");
    }
  } finally {
    engine.close();
  }
}
