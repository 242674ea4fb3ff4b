/**
 * Record files: atomic replacement, and refusal — naming the file — of every damaged form a
 * crash or an operator can leave behind (empty, truncated at any byte, flipped bits, another
 * format). A damaged TSO file must never read as "nothing saved".
 */
import assert from "node:assert/strict";
import { CorruptFileError, readRecordFile, writeRecordFile } from "./durable_file.ts";
import { FileValueStore } from "./file_value_store.ts";
import { TimestampOracle } from "./oracle.ts";

function assertCorrupt(action: () => unknown, path: string, reason: RegExp): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof CorruptFileError, `expected CorruptFileError, got ${error}`);
    assert.equal(error.path, path);
    assert.ok(error.message.includes(path), "the message names the file");
    assert.match(error.reason, reason);
    return true;
  });
}

Deno.test("a record file round-trips, and a missing one reads as null", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/tso`;
    assert.equal(readRecordFile(path, "basalt-tso"), null);
    writeRecordFile(path, { format: "basalt-tso", fields: { boundMs: "1700000003000" } });
    assert.deepEqual(readRecordFile(path, "basalt-tso"), { boundMs: "1700000003000" });
    writeRecordFile(path, { format: "basalt-tso", fields: { boundMs: "1700000006000" } });
    assert.deepEqual(readRecordFile(path, "basalt-tso"), { boundMs: "1700000006000" });
    assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), ["tso"]);
    const text = Deno.readTextFileSync(path);
    assert.match(
      text,
      /^\{"format":"basalt-tso","version":1,"boundMs":"1700000006000"\}\ncrc32 [0-9a-f]{8}\n$/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a record file truncated at any byte is refused with an error naming it", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/tso`;
    writeRecordFile(path, { format: "basalt-tso", fields: { boundMs: "1700000003000" } });
    const whole = Deno.readFileSync(path);
    for (let length = 0; length < whole.length; length++) {
      Deno.writeFileSync(path, whole.subarray(0, length));
      assertCorrupt(() => readRecordFile(path, "basalt-tso"), path, /./);
    }
    Deno.writeFileSync(path, new Uint8Array(0));
    assertCorrupt(() => readRecordFile(path, "basalt-tso"), path, /empty/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a flipped digit, another format or a non-decimal value is refused", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/tso`;
    writeRecordFile(path, { format: "basalt-tso", fields: { boundMs: "1700000003000" } });
    const text = Deno.readTextFileSync(path);
    Deno.writeTextFileSync(path, text.replace("1700000003000", "1700000002000"));
    assertCorrupt(() => readRecordFile(path, "basalt-tso"), path, /checksum mismatch/);

    writeRecordFile(path, { format: "basalt-ids", fields: { end: "5" } });
    assertCorrupt(() => readRecordFile(path, "basalt-tso"), path, /format is "basalt-ids"/);

    const store = new FileValueStore(path, { format: "basalt-ids", field: "end" });
    writeRecordFile(path, { format: "basalt-ids", fields: { end: "-5" } });
    assertCorrupt(() => store.load(), path, /not a decimal u64/);
    writeRecordFile(path, { format: "basalt-ids", fields: { end: "18446744073709551616" } });
    assertCorrupt(() => store.load(), path, /exceeds a u64/);
    writeRecordFile(path, { format: "basalt-ids", fields: {} });
    assertCorrupt(() => store.load(), path, /missing/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a leftover temporary file from a crash is ignored and replaced", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/tso`;
    const store = new FileValueStore(path, { format: "basalt-tso", field: "boundMs" });
    store.save(42n);
    Deno.writeTextFileSync(`${path}.tmp`, "half a rec");
    assert.equal(store.load(), 42n);
    store.save(43n);
    assert.equal(store.load(), 43n);
    assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), ["tso"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the oracle over a file: a restart behind the clock continues above, a corrupt file stops it", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/tso`;
    const store = () => new FileValueStore(path, { format: "basalt-tso", field: "boundMs" });
    let nowMs = 9_000_000;
    const clock = { nowMs: () => nowMs };
    const before = TimestampOracle.open({ clock, store: store() }).next(10).last;
    nowMs = 8_000_000;
    const after = TimestampOracle.open({ clock, store: store() }).next(10);
    assert.ok(after.first > before);

    const damaged = Deno.readTextFileSync(path).slice(0, 20);
    Deno.writeTextFileSync(path, damaged);
    assertCorrupt(() => TimestampOracle.open({ clock, store: store() }), path, /./);
    assert.equal(Deno.readTextFileSync(path), damaged, "the damaged file is left as it was");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
