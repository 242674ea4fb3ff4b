/**
 * One engine workload of the db_bench comparison, run in its own process so that its peak RSS
 * can be measured the same way as db_bench's. Prints one JSON object of ops/s per benchmark.
 *
 * Keys and values are shaped as db_bench shapes them: 16-byte keys holding the big-endian key
 * number padded with '0', 100-byte values, uniform random key numbers in [0, num). Keys and
 * values are written into reused buffers, as db_bench does.
 *
 *   deno run -A bench/engine_workload.ts --mode fill-read-seek|batch|sync --num N --dir D
 */
import { parseArgs } from "node:util";
import { RocksDbEngine } from "../src/engine/rocksdb_engine.ts";

const KEY_BYTES = 16;
const VALUE_BYTES = 100;
const SEEK_NEXTS = 10;
const BATCH_SIZE = 100;

/** A small xorshift generator: uniform enough for key choice, and cheap. */
function makeRandom(seed: number): (bound: number) => number {
  let state = seed >>> 0 || 1;
  return (bound) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % bound;
  };
}

const keyBuffer = new Uint8Array(KEY_BYTES);
const keyView = new DataView(keyBuffer.buffer);

function keyFor(index: number): Uint8Array {
  keyView.setUint32(0, Math.floor(index / 2 ** 32));
  keyView.setUint32(4, index >>> 0);
  return keyBuffer;
}

function makeValue(): Uint8Array {
  const value = new Uint8Array(VALUE_BYTES);
  for (let i = 0; i < VALUE_BYTES; i++) value[i] = 32 + ((i * 7919) % 95);
  return value;
}

function opsPerSecond(operations: number, started: number): number {
  return operations / ((performance.now() - started) / 1000);
}

function fillRandom(engine: RocksDbEngine, num: number): number {
  const random = makeRandom(301);
  const value = makeValue();
  const started = performance.now();
  for (let i = 0; i < num; i++) engine.put("default", keyFor(random(num)), value);
  return opsPerSecond(num, started);
}

function readRandom(engine: RocksDbEngine, num: number): number {
  const random = makeRandom(302);
  let found = 0;
  const started = performance.now();
  for (let i = 0; i < num; i++) if (engine.get("default", keyFor(random(num))) !== null) found++;
  const result = opsPerSecond(num, started);
  if (found === 0) throw new Error("readrandom found nothing: the fill did not happen");
  return result;
}

function seekRandom(engine: RocksDbEngine, seeks: number, num: number): number {
  const random = makeRandom(303);
  const iterator = engine.iterator("default");
  let bytes = 0;
  const started = performance.now();
  for (let i = 0; i < seeks; i++) {
    iterator.seek(keyFor(random(num)));
    for (let j = 0; j < SEEK_NEXTS && iterator.valid(); j++) {
      bytes += iterator.key().length + iterator.value().length;
      iterator.next();
    }
  }
  const result = opsPerSecond(seeks, started);
  iterator.close();
  if (bytes === 0) throw new Error("seekrandom read nothing");
  return result;
}

function fillBatch(engine: RocksDbEngine, num: number): number {
  const random = makeRandom(304);
  const value = makeValue();
  const batch = engine.newWriteBatch();
  const started = performance.now();
  for (let i = 0; i < num; i += BATCH_SIZE) {
    for (let j = 0; j < BATCH_SIZE; j++) batch.put("default", keyFor(random(num)), value);
    engine.write(batch);
    batch.clear();
  }
  const result = opsPerSecond(num, started);
  batch.destroy();
  return result;
}

async function fillSync(engine: RocksDbEngine, writes: number): Promise<number> {
  const random = makeRandom(305);
  const value = makeValue();
  const batch = engine.newWriteBatch();
  const started = performance.now();
  for (let i = 0; i < writes; i++) {
    batch.put("default", keyFor(random(writes * 1000)), value);
    await engine.writeDurable(batch);
    batch.clear();
  }
  const result = opsPerSecond(writes, started);
  batch.destroy();
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mode: { type: "string" },
      num: { type: "string", default: "1000000" },
      seeks: { type: "string" },
      writes: { type: "string", default: "5000" },
      dir: { type: "string" },
    },
  });
  const num = Number(values.num);
  if (!values.dir) throw new Error("--dir is required");
  const engine = RocksDbEngine.open(values.dir, {
    compression: "none",
    blockCacheBytes: 256 * 1024 * 1024,
    bloomBitsPerKey: 10,
  });
  const result: Record<string, number> = {};
  if (values.mode === "fill-read-seek") {
    result.fillrandom = fillRandom(engine, num);
    result.readrandom = readRandom(engine, num);
    result.seekrandom = seekRandom(engine, Number(values.seeks ?? num), num);
  } else if (values.mode === "batch") {
    result.fillbatch = fillBatch(engine, num);
  } else if (values.mode === "sync") {
    result.fillsync = await fillSync(engine, Number(values.writes));
  } else {
    throw new Error(`unknown --mode ${values.mode}`);
  }
  engine.close();
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
