/**
 * Bad input to the storage engine (issue 2, item 8): each case gets an error that says what is
 * wrong and what to do, and nothing already stored is lost or changed.
 */
import assert from "node:assert/strict";
import { RocksDbError } from "../ffi/native.ts";
import { ENGINE_MAX_KEY_BYTES, ENGINE_MAX_VALUE_BYTES } from "../src/constants.ts";
import { EntryTooLargeError } from "../src/engine/limits.ts";
import {
  DataDirectoryLockedError,
  NotADatabaseError,
  RocksDbEngine,
} from "../src/engine/rocksdb_engine.ts";
import { ingestExternalFiles } from "../src/engine/rocksdb_sst.ts";
import { EngineClosedError } from "../src/engine/types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);
const text = (value: Uint8Array | null) => (value === null ? null : decoder.decode(value));
const HOLDER = new URL("./fixtures/hold_database.ts", import.meta.url).pathname;
const CHECK_ROCKSDB = new URL("../scripts/check_rocksdb.ts", import.meta.url).pathname;

async function withTempDir(body: (directory: string) => Promise<void> | void): Promise<void> {
  const directory = await Deno.makeTempDir({ prefix: "basalt-bad-input-" });
  try {
    await body(directory);
  } finally {
    await Deno.remove(directory, { recursive: true });
  }
}

/** Collects a child's stdout; `waitFor` resolves once the text so far satisfies a test. */
function collect(stream: ReadableStream<Uint8Array>) {
  let text = "";
  const done = stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (text += chunk) }),
  );
  const waitFor = async (wanted: string) => {
    for (let i = 0; i < 3000 && !text.includes(wanted); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(text.includes(wanted), `child output ${JSON.stringify(text)} lacks ${wanted}`);
  };
  return { text: () => text, done, waitFor };
}

Deno.test("a data directory locked by another process: DataDirectoryLockedError, holder's data kept", async () => {
  await withTempDir(async (directory) => {
    const path = `${directory}/db`;
    const holder = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", HOLDER, path],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const output = collect(holder.stdout);
    try {
      await output.waitFor("ready\n");
      assert.throws(
        () => RocksDbEngine.open(path),
        (error: unknown) =>
          error instanceof DataDirectoryLockedError &&
          error.path === path &&
          error.message.includes("in use by another process") &&
          error.message.includes("stop that process or choose another data directory"),
      );
    } finally {
      await holder.stdin.close();
    }
    assert.equal((await holder.status).code, 0);
    await output.done;
    assert.equal(output.text(), "ready\nclosed\n");

    const engine = RocksDbEngine.open(path, { createIfMissing: false });
    try {
      assert.equal(text(engine.get("default", bytes("held"))), "by the holder");
    } finally {
      engine.close();
    }
  });
});

/** Every entry under `root`: relative path → size, modification time and content. */
function fingerprint(root: string, prefix = ""): Map<string, string> {
  const entries = new Map<string, string>();
  for (const entry of Deno.readDirSync(`${root}/${prefix}`)) {
    const relative = `${prefix}${entry.name}`;
    const info = Deno.statSync(`${root}/${relative}`);
    if (entry.isDirectory) {
      entries.set(`${relative}/`, `dir ${info.mtime?.getTime()}`);
      for (const [name, value] of fingerprint(root, `${relative}/`)) entries.set(name, value);
    } else {
      const content = Deno.readTextFileSync(`${root}/${relative}`);
      entries.set(relative, `${info.size} ${info.mtime?.getTime()} ${content}`);
    }
  }
  return entries;
}

Deno.test("a non-empty directory that is not a RocksDB store: NotADatabaseError, left untouched", async () => {
  await withTempDir((directory) => {
    const path = `${directory}/photos`;
    Deno.mkdirSync(`${path}/2024`, { recursive: true });
    Deno.writeTextFileSync(`${path}/notes.txt`, "not a database\n");
    Deno.writeTextFileSync(`${path}/2024/summer.txt`, "beach\n");
    // A LOCK or LOG file alone does not make a database either.
    Deno.writeTextFileSync(`${path}/LOCK`, "");
    const before = fingerprint(path);
    for (const createIfMissing of [true, false]) {
      assert.throws(
        () => RocksDbEngine.open(path, { createIfMissing }),
        (error: unknown) =>
          error instanceof NotADatabaseError &&
          error.path === path &&
          /holds no RocksDB database/.test(error.message) &&
          /choose an empty or new directory/.test(error.message),
      );
    }
    assert.deepEqual(fingerprint(path), before);
  });
});

/** Runs scripts/check_rocksdb.ts with `env` and returns exit code, stdout and stderr. */
async function checkRocksDb(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHECK_ROCKSDB, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

function assertOneLineError(stderr: string): void {
  assert.equal(stderr.trimEnd().split("\n").length, 1, `one line expected, got:\n${stderr}`);
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
  assert.doesNotMatch(stderr, /Uncaught/);
}

Deno.test("a missing librocksdb: opening an engine fails with one line naming the install command", async () => {
  await withTempDir(async (directory) => {
    const result = await checkRocksDb(
      { BASALT_ROCKSDB_LIB: "/nonexistent/librocksdb.so" },
      [`${directory}/db`],
    );
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assertOneLineError(result.stderr);
    assert.match(result.stderr, /RocksDB shared library not found/);
    assert.match(result.stderr, /\/nonexistent\/librocksdb\.so/);
    assert.match(result.stderr, /sudo apt-get install -y librocksdb7\.8/);
    assert.doesNotMatch(result.stderr, /dlopen/i);
  });
});

Deno.test("BASALT_ROCKSDB_LIB naming a file that is not a library: one line, no stack trace", async () => {
  const result = await checkRocksDb({ BASALT_ROCKSDB_LIB: CHECK_ROCKSDB });
  assert.equal(result.code, 1);
  assertOneLineError(result.stderr);
  assert.match(result.stderr, /Cannot load RocksDB from .*check_rocksdb\.ts/);
  assert.match(result.stderr, /librocksdb7\.8/);
});

Deno.test("scripts/check_rocksdb.ts prints the library it found", async () => {
  const result = await checkRocksDb({});
  assert.equal(result.code, 0, result.stderr);
  const path = result.stdout.trim();
  assert.match(path, /librocksdb/);
  assert.ok(Deno.statSync(path).isFile);
});

Deno.test("an over-limit key or value: EntryTooLargeError, and stored data is kept", async () => {
  await withTempDir((directory) => {
    const path = `${directory}/db`;
    const engine = RocksDbEngine.open(path);
    try {
      engine.put("default", bytes("earlier"), bytes("kept"));
      const bigKey = new Uint8Array(ENGINE_MAX_KEY_BYTES + 1);
      // Only the length is checked before anything is copied, so this costs no real memory.
      const bigValue = new Uint8Array(ENGINE_MAX_VALUE_BYTES + 1);
      const isTooLarge = (what: "key" | "value", sizeBytes: number) => (error: unknown) =>
        error instanceof EntryTooLargeError &&
        error.what === what &&
        error.sizeBytes === sizeBytes &&
        error.message.includes(`exceeds the engine limit of ${error.limit} bytes`);
      const keyTooLarge = isTooLarge("key", bigKey.length);
      assert.throws(() => engine.put("default", bigKey, bytes("v")), keyTooLarge);
      assert.throws(() => engine.delete("default", bigKey), keyTooLarge);
      assert.throws(() => engine.deleteRange("default", bytes("a"), bigKey), keyTooLarge);
      const valueTooLarge = isTooLarge("value", bigValue.length);
      assert.throws(() => engine.put("default", bytes("earlier"), bigValue), valueTooLarge);
      using batch = engine.newWriteBatch();
      batch.put("default", bytes("in batch"), bytes("fine"));
      assert.throws(() => batch.put("default", bytes("earlier"), bigValue), valueTooLarge);
      assert.throws(() => batch.put("default", bigKey, bytes("v")), keyTooLarge);
      assert.equal(batch.count, 1, "refused entries are not added to the batch");
      engine.write(batch);
      assert.equal(text(engine.get("default", bytes("earlier"))), "kept");
      assert.equal(text(engine.get("default", bytes("in batch"))), "fine");
    } finally {
      engine.close();
    }
    const reopened = RocksDbEngine.open(path, { createIfMissing: false });
    try {
      assert.equal(text(reopened.get("default", bytes("earlier"))), "kept");
    } finally {
      reopened.close();
    }
  });
});

Deno.test("a closed engine, iterator, snapshot or write batch throws EngineClosedError, no crash", async () => {
  await withTempDir(async (directory) => {
    const engine = RocksDbEngine.open(`${directory}/db`);
    engine.put("default", bytes("a"), bytes("1"));
    const key = bytes("a");

    const iterator = engine.iterator("default");
    iterator.seekToFirst();
    iterator.close();
    iterator.close();
    for (
      const use of [() => iterator.seek(key), () => iterator.seekToFirst(), () => iterator.next()]
    ) {
      assert.throws(use, EngineClosedError);
    }
    assert.throws(() => iterator.valid(), EngineClosedError);
    assert.throws(() => iterator.key(), EngineClosedError);
    assert.throws(() => iterator.value(), EngineClosedError);

    const snapshot = engine.snapshot();
    snapshot.release();
    snapshot.release();
    assert.throws(() => snapshot.get("default", key), EngineClosedError);
    assert.throws(() => snapshot.multiGet("default", [key]), EngineClosedError);
    assert.throws(() => snapshot.iterator("default"), EngineClosedError);

    const destroyed = engine.newWriteBatch();
    destroyed.destroy();
    destroyed.destroy();
    assert.throws(() => destroyed.put("default", key, key), EngineClosedError);
    assert.throws(() => destroyed.delete("default", key), EngineClosedError);
    assert.throws(() => destroyed.deleteRange("default", key, bytes("b")), EngineClosedError);
    assert.throws(() => destroyed.count, EngineClosedError);
    assert.throws(() => destroyed.clear(), EngineClosedError);
    assert.throws(() => engine.write(destroyed), EngineClosedError);
    await assert.rejects(engine.writeDurable(destroyed), EngineClosedError);

    // Children still open when the engine closes are closed with it.
    const openIterator = engine.iterator("default");
    openIterator.seekToFirst();
    const openSnapshot = engine.snapshot();
    const liveBatch = engine.newWriteBatch();
    liveBatch.put("default", bytes("b"), bytes("2"));
    engine.close();
    engine.close();
    assert.equal(engine.closed, true);
    assert.throws(() => openIterator.next(), EngineClosedError);
    assert.throws(() => openIterator.key(), EngineClosedError);
    assert.throws(() => openSnapshot.get("default", key), EngineClosedError);
    // The batch's column family handles died with the engine (this was a SIGSEGV once).
    assert.throws(() => liveBatch.put("default", key, key), EngineClosedError);
    assert.throws(() => liveBatch.delete("default", key), EngineClosedError);
    assert.throws(() => engine.write(liveBatch), EngineClosedError);
    liveBatch.destroy();

    const uses: [string, () => unknown][] = [
      ["get", () => engine.get("default", key)],
      ["multiGet", () => engine.multiGet("default", [key])],
      ["put", () => engine.put("default", key, key)],
      ["delete", () => engine.delete("default", key)],
      ["singleDelete", () => engine.singleDelete("default", key)],
      ["deleteRange", () => engine.deleteRange("default", key, bytes("b"))],
      ["iterator", () => engine.iterator("default")],
      ["snapshot", () => engine.snapshot()],
      ["newWriteBatch", () => engine.newWriteBatch()],
      ["flush", () => engine.flush()],
      ["compactRange", () => engine.compactRange("default")],
      ["property", () => engine.property("default", "rocksdb.estimate-num-keys")],
      ["checkpoint", () => engine.checkpoint(`${directory}/checkpoint`)],
      ["share", () => engine.share()],
      ["ingestExternalFiles", () => ingestExternalFiles(engine, "default", ["x.sst"])],
    ];
    for (const [name, use] of uses) assert.throws(use, EngineClosedError, name);
    await assert.rejects(engine.writeDurable(liveBatch), EngineClosedError);
  });
});

/** Ways to damage a closed database, each applied to a fresh copy. */
const DAMAGE: [string, (path: string) => void][] = [
  ["CURRENT garbled", (path) => Deno.writeTextFileSync(`${path}/CURRENT`, "garbage")],
  ["CURRENT names a missing MANIFEST", (path) => {
    Deno.writeTextFileSync(`${path}/CURRENT`, "MANIFEST-999999\n");
  }],
  ["MANIFEST truncated", (path) => {
    const manifest = `${path}/${fileStartingWith(path, "MANIFEST-")}`;
    Deno.truncateSync(manifest, 10);
  }],
  ["MANIFEST garbled", (path) => {
    const manifest = `${path}/${fileStartingWith(path, "MANIFEST-")}`;
    const content = Deno.readFileSync(manifest);
    for (let i = 0; i < content.length; i += 3) content[i] = 0x5a;
    Deno.writeFileSync(manifest, content);
  }],
  ["an SST file deleted", (path) => {
    Deno.removeSync(`${path}/${fileEndingWith(path, ".sst")}`);
  }],
];

function fileStartingWith(path: string, prefix: string): string {
  const name = [...Deno.readDirSync(path)].find((entry) => entry.name.startsWith(prefix))?.name;
  assert.ok(name !== undefined, `no ${prefix}* in ${path}`);
  return name;
}

function fileEndingWith(path: string, suffix: string): string {
  const name = [...Deno.readDirSync(path)].find((entry) => entry.name.endsWith(suffix))?.name;
  assert.ok(name !== undefined, `no *${suffix} in ${path}`);
  return name;
}

function copyDirectory(from: string, to: string): void {
  Deno.mkdirSync(to);
  for (const entry of Deno.readDirSync(from)) {
    if (entry.isFile) Deno.copyFileSync(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

Deno.test("a damaged database: RocksDbError saying it is damaged and what to do", async () => {
  await withTempDir((directory) => {
    const original = `${directory}/db`;
    const engine = RocksDbEngine.open(original);
    for (let i = 0; i < 100; i++) engine.put("default", bytes(`key-${i}`), bytes(`value-${i}`));
    engine.flush();
    engine.close();

    for (const [name, damage] of DAMAGE) {
      const copy = `${directory}/${name.replaceAll(" ", "-")}`;
      copyDirectory(original, copy);
      damage(copy);
      assert.throws(
        () => RocksDbEngine.open(copy, { createIfMissing: false }),
        (error: unknown) => {
          assert.ok(error instanceof RocksDbError, `${name}: ${error}`);
          assert.match(error.message, /the database is damaged/, name);
          assert.match(error.message, /restore it from a replica or backup/, name);
          assert.ok(error.message.includes(`ldb --db=${copy} repair`), name);
          return true;
        },
      );
    }
    // The damage was done to copies; the original still opens with all its data.
    const reopened = RocksDbEngine.open(original, { createIfMissing: false });
    try {
      assert.equal(text(reopened.get("default", bytes("key-99"))), "value-99");
    } finally {
      reopened.close();
    }
  });
});
