/**
 * SST file writer, external-file ingestion and checkpoints: the pieces Raft snapshots are made
 * of (TiKV: `SstWriter`, `ingest_external_file_cf`, checkpoint-based snapshot generation).
 */
import assert from "node:assert/strict";
import { RocksDbEngine } from "./rocksdb_engine.ts";
import { ingestExternalFiles, SstFileWriter, SstKeyOrderError } from "./rocksdb_sst.ts";
import { EngineClosedError } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);
const text = (value: Uint8Array | null) => (value === null ? null : decoder.decode(value));
const key = (i: number) => bytes(`key-${String(i).padStart(6, "0")}`);

async function withTempDir(body: (directory: string) => Promise<void> | void): Promise<void> {
  const directory = await Deno.makeTempDir({ prefix: "basalt-sst-" });
  try {
    await body(directory);
  } finally {
    await Deno.remove(directory, { recursive: true });
  }
}

Deno.test("SstFileWriter: a finished file ingests into a column family and reads back", async () => {
  await withTempDir((directory) => {
    const engine = RocksDbEngine.open(`${directory}/db`);
    try {
      engine.put("write", key(1), bytes("old value, shadowed by the file"));
      engine.put("write", key(5), bytes("deleted by the file"));
      engine.put("default", key(2), bytes("other family, untouched"));
      const path = `${directory}/snapshot-write.sst`;
      const writer = SstFileWriter.open(path);
      for (let i = 0; i < 1000; i++) {
        if (i === 5) writer.delete(key(i));
        else writer.put(key(i), bytes(`value-${i}`));
      }
      assert.equal(writer.entries, 1000);
      const sizeBytes = writer.finish();
      writer.destroy();
      assert.ok(sizeBytes > 0);
      assert.equal(Deno.statSync(path).size, sizeBytes);

      ingestExternalFiles(engine, "write", [path]);
      assert.equal(text(engine.get("write", key(1))), "value-1");
      assert.equal(engine.get("write", key(5)), null, "the file's delete hides the old entry");
      assert.equal(text(engine.get("write", key(999))), "value-999");
      assert.equal(engine.get("default", key(1)), null, "other families see nothing");
      assert.equal(text(engine.get("default", key(2))), "other family, untouched");
      let count = 0;
      using iterator = engine.iterator("write");
      for (iterator.seekToFirst(); iterator.valid(); iterator.next()) count++;
      assert.equal(count, 999);
      assert.ok(Deno.statSync(path).isFile, "copied, not moved, by default");
    } finally {
      engine.close();
    }
  });
});

Deno.test("SstFileWriter: deleteRange in a file removes the range on ingestion", async () => {
  await withTempDir((directory) => {
    const engine = RocksDbEngine.open(`${directory}/db`);
    try {
      for (let i = 0; i < 20; i++) engine.put("default", key(i), bytes(`old-${i}`));
      engine.flush("default");
      const path = `${directory}/range.sst`;
      using writer = SstFileWriter.open(path);
      writer.deleteRange(key(0), key(10));
      writer.put(key(3), bytes("new-3"));
      writer.finish();
      ingestExternalFiles(engine, "default", [path], { move: true });
      assert.equal(engine.get("default", key(0)), null);
      assert.equal(engine.get("default", key(9)), null);
      // A file's point entries and its range deletions carry the same sequence number; RocksDB
      // lets the point entry win, which is what a snapshot (clear range, then fill) wants.
      assert.equal(text(engine.get("default", key(3))), "new-3");
      assert.equal(text(engine.get("default", key(10))), "old-10");
      assert.throws(() => Deno.statSync(path), Deno.errors.NotFound, "moved into the database");
    } finally {
      engine.close();
    }
  });
});

Deno.test("SstFileWriter: a key out of ascending order is refused with a clear error", async () => {
  await withTempDir((directory) => {
    using writer = SstFileWriter.open(`${directory}/order.sst`);
    writer.put(key(2), bytes("two"));
    assert.throws(
      () => writer.put(key(1), bytes("one")),
      (error: unknown) =>
        error instanceof SstKeyOrderError &&
        /strictly ascending key order/.test(error.message) &&
        error.message.includes("0x6b65792d303030303031"),
    );
    assert.throws(() => writer.delete(key(2)), SstKeyOrderError, "an equal key is refused too");
    writer.put(key(3), bytes("three"));
    assert.throws(() => writer.deleteRange(key(5), key(4)), /is not before end/);
    writer.deleteRange(key(10), key(20));
    assert.throws(() => writer.deleteRange(key(15), key(30)), SstKeyOrderError);
    assert.equal(writer.entries, 3);
    assert.ok(writer.finish() > 0);
  });
});

Deno.test("SstFileWriter: a destroyed writer throws EngineClosedError; destroy is idempotent", async () => {
  await withTempDir((directory) => {
    const writer = SstFileWriter.open(`${directory}/closed.sst`);
    writer.put(key(1), bytes("one"));
    writer.destroy();
    writer.destroy();
    assert.throws(() => writer.put(key(2), bytes("two")), EngineClosedError);
    assert.throws(() => writer.delete(key(2)), EngineClosedError);
    assert.throws(() => writer.deleteRange(key(2), key(3)), EngineClosedError);
    assert.throws(() => writer.finish(), EngineClosedError);
  });
});

Deno.test("SstFileWriter: finishing twice or an empty file is refused", async () => {
  await withTempDir((directory) => {
    using empty = SstFileWriter.open(`${directory}/empty.sst`);
    assert.throws(() => empty.finish(), /no entries/);
    using writer = SstFileWriter.open(`${directory}/once.sst`);
    writer.put(key(1), bytes("one"));
    writer.finish();
    assert.throws(() => writer.finish(), /already finished/);
    assert.throws(() => writer.put(key(2), bytes("two")), /already finished/);
  });
});

Deno.test("SstFileWriter: opening in a missing directory is a RocksDB error", async () => {
  await withTempDir((directory) => {
    assert.throws(
      () => SstFileWriter.open(`${directory}/no/such/dir/x.sst`),
      (error: unknown) => error instanceof Error && /open SST file/.test(error.message),
    );
  });
});

Deno.test("ingestExternalFiles: a missing file is a RocksDB error and nothing changes", async () => {
  await withTempDir((directory) => {
    const engine = RocksDbEngine.open(`${directory}/db`);
    try {
      engine.put("default", key(1), bytes("kept"));
      assert.throws(
        () => ingestExternalFiles(engine, "default", [`${directory}/missing.sst`]),
        (error: unknown) => error instanceof Error && /ingest .*missing\.sst/.test(error.message),
      );
      assert.equal(text(engine.get("default", key(1))), "kept");
    } finally {
      engine.close();
    }
  });
});

Deno.test("checkpoint(): the directory opens as a database with the same data", async () => {
  await withTempDir((directory) => {
    const engine = RocksDbEngine.open(`${directory}/db`);
    const checkpointPath = `${directory}/checkpoint`;
    try {
      for (let i = 0; i < 200; i++) engine.put("default", key(i), bytes(`default-${i}`));
      engine.flush("default");
      engine.put("raft", key(1), bytes("in the memtable only"));
      engine.put("lock", key(7), bytes("lock-7"));
      engine.checkpoint(checkpointPath);
      engine.put("default", key(0), bytes("written after the checkpoint"));
      assert.throws(() => engine.checkpoint(checkpointPath), /checkpoint into/);
    } finally {
      engine.close();
    }
    const copy = RocksDbEngine.open(checkpointPath, { createIfMissing: false });
    try {
      for (let i = 0; i < 200; i++) {
        assert.equal(text(copy.get("default", key(i))), `default-${i}`);
      }
      assert.equal(text(copy.get("raft", key(1))), "in the memtable only");
      assert.equal(text(copy.get("lock", key(7))), "lock-7");
    } finally {
      copy.close();
    }
  });
});
