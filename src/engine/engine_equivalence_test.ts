/**
 * The same long random operation log applied to the RocksDB engine and the in-memory engine;
 * every read (get, multiGet, bounded scans both ways, seek/seekForPrev, snapshot reads) must
 * agree. Keys come from a tiny alphabet so that prefixes, collisions and empty keys are common.
 * Run with SEED=n to replay a failure.
 */
import assert from "node:assert/strict";
import { toHex } from "../util/bytes.ts";
import { SeededRandom, seedFromEnv } from "../util/random.ts";
import { MemoryEngine } from "./memory_engine.ts";
import { RocksDbEngine } from "./rocksdb_engine.ts";
import type { ColumnFamily, IterOptions, KvEngine, Readable, Snapshot } from "./types.ts";

const OPERATIONS = 4000;
const FAMILIES: ColumnFamily[] = ["default", "write"];

function randomKey(random: SeededRandom): Uint8Array {
  const length = random.int(4);
  const key = new Uint8Array(length);
  for (let i = 0; i < length; i++) key[i] = random.pick([0x00, 0x61, 0x62, 0xff]);
  return key;
}

function randomBounds(random: SeededRandom): IterOptions {
  const options: IterOptions = {};
  if (random.chance(0.4)) options.lowerBound = randomKey(random);
  if (random.chance(0.4)) options.upperBound = randomKey(random);
  const { lowerBound, upperBound } = options;
  if (lowerBound && upperBound && toHex(lowerBound) > toHex(upperBound)) {
    options.lowerBound = upperBound;
    options.upperBound = lowerBound;
  }
  return options;
}

/** A textual trace of a read so both engines' answers compare as strings. */
function readTrace(reader: Readable, random: SeededRandom): string {
  const cf = random.pick(FAMILIES);
  const kind = random.int(4);
  if (kind === 0) {
    const key = randomKey(random);
    const value = reader.get(cf, key);
    return `get ${toHex(key)} = ${value === null ? "null" : toHex(value)}`;
  }
  if (kind === 1) {
    const keys = [randomKey(random), randomKey(random), randomKey(random)];
    return `multiGet = ${reader.multiGet(cf, keys).map((v) => (v ? toHex(v) : "null"))}`;
  }
  const bounds = randomBounds(random);
  const iterator = reader.iterator(cf, bounds);
  const seen: string[] = [];
  const forward = kind === 2;
  if (random.chance(0.5)) {
    if (forward) iterator.seek(randomKey(random));
    else iterator.seekForPrev(randomKey(random));
  } else if (forward) iterator.seekToFirst();
  else iterator.seekToLast();
  for (let steps = 0; iterator.valid() && steps < 20; steps++) {
    seen.push(`${toHex(iterator.key())}:${toHex(iterator.value())}`);
    if (forward) iterator.next();
    else iterator.prev();
  }
  iterator.close();
  return `scan ${forward ? "fwd" : "rev"} ${JSON.stringify(bounds)} = ${seen.join(",")}`;
}

function randomWrite(engines: KvEngine[], random: SeededRandom): void {
  const kind = random.int(10);
  const cf = random.pick(FAMILIES);
  const key = randomKey(random);
  const value = random.bytes(random.int(3));
  const end = randomKey(random);
  const [start, stop] = toHex(key) <= toHex(end) ? [key, end] : [end, key];
  for (const engine of engines) {
    if (kind < 5) engine.put(cf, key, value);
    else if (kind < 7) engine.delete(cf, key);
    else if (kind < 8) engine.deleteRange(cf, start, stop);
    else {
      const batch = engine.newWriteBatch();
      batch.put(cf, key, value);
      batch.deleteRange(cf, start, stop);
      batch.put("default", end, value);
      batch.delete("write", key);
      engine.write(batch);
      batch.destroy();
    }
  }
}

Deno.test("RocksDB and in-memory engines agree on a long random operation log", async () => {
  const seed = seedFromEnv();
  const directory = await Deno.makeTempDir({ prefix: "basalt-equivalence-" });
  const rocks = RocksDbEngine.open(directory, { blockCacheBytes: 8 << 20 });
  const memory = new MemoryEngine();
  const engines: KvEngine[] = [rocks, memory];
  let snapshots: [Snapshot, Snapshot] | null = null;
  try {
    for (let step = 0; step < OPERATIONS; step++) {
      // One random source per engine read, seeded alike, so both see identical reads.
      const readSeed = new SeededRandom(seed + step).nextUint32();
      randomWrite(engines, new SeededRandom(readSeed ^ 0x5bd1e995));
      const readers: Readable[] = snapshots !== null && step % 2 === 0 ? snapshots : engines;
      const [a, b] = readers.map((reader) => readTrace(reader, new SeededRandom(readSeed)));
      assert.equal(a, b, `engines disagree at step ${step} (SEED=${seed})`);
      if (step % 97 === 0) {
        snapshots?.forEach((s) => s.release());
        snapshots = [rocks.snapshot(), memory.snapshot()];
      }
      if (step % 500 === 250) rocks.flush();
    }
  } catch (error) {
    console.error(`engine equivalence failed with SEED=${seed}`);
    throw error;
  } finally {
    snapshots?.forEach((s) => s.release());
    rocks.close();
    await Deno.remove(directory, { recursive: true });
  }
});
