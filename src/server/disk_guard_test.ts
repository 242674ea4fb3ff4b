/**
 * The disk guard (issue #9, item 6) against a fake engine and disk: it fences writes while the
 * disk has less free than the reserve size and lifts the fence when space comes back, reports
 * an engine that cannot write and its recovery, names the reserve file in its hint, and keeps
 * the reserve within RESERVE_SPACE_MAX_SHARE_OF_FREE of the free space. The real full disk is
 * in `tests/e2e/disk_full_test.ts`.
 */
import assert from "node:assert/strict";
import { RESERVE_SPACE_MAX_SHARE_OF_FREE } from "../constants.ts";
import { DiskGuard, type DiskSpace, RESERVE_FILE_NAME } from "./disk_guard.ts";

const NO_SPACE = "IO error: No space left on device: While appending to file: 000012.log";

async function withGuard(
  options: { reserveBytes: number; availableBytes: number | null },
  body: (parts: {
    guard: DiskGuard;
    engine: { failure: string | null; fenced: boolean };
    space: { availableBytes: number | null };
    clock: { ms: number };
    lines: string[];
    dir: string;
  }) => void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "basalt_disk_guard_" });
  const engine = { failure: null as string | null, fenced: false };
  const space = { availableBytes: options.availableBytes };
  const clock = { ms: 5_000 };
  const lines: string[] = [];
  const disk: DiskSpace = {
    availableBytes: () => space.availableBytes,
    allocateFile: (path, bytes) => {
      Deno.writeFileSync(path, new Uint8Array(bytes));
      return null;
    },
  };
  const guard = new DiskGuard({
    engine: {
      writeProbe: () => engine.failure,
      fenceWrites: (fenced) => void (engine.fenced = fenced),
    },
    dataDir: dir,
    reserveBytes: options.reserveBytes,
    disk,
    log: {
      info: (message, fields) => void lines.push(`INFO ${message} ${JSON.stringify(fields)}`),
      error: (message, fields) => void lines.push(`ERROR ${message} ${JSON.stringify(fields)}`),
    },
    nowMs: () => clock.ms,
  });
  try {
    body({ guard, engine, space, clock, lines, dir });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the guard reports an engine that cannot write, for how long, and its recovery", async () => {
  await withGuard({ reserveBytes: 4096, availableBytes: 1 << 30 }, (t) => {
    assert.equal(t.guard.ensureReserve(), "created");
    assert.equal(Deno.statSync(`${t.dir}/${RESERVE_FILE_NAME}`).size, 4096);
    assert.deepEqual(t.guard.check(), { writable: true });
    assert.equal(t.guard.cannotWrite(), null);

    t.engine.failure = NO_SPACE;
    t.guard.check();
    t.clock.ms += 3_000;
    assert.deepEqual(t.guard.check(), { writable: false, reason: NO_SPACE, sinceMs: 5_000 });
    assert.equal(t.guard.cannotWrite(), NO_SPACE);
    const errors = t.lines.filter((line) => line.startsWith("ERROR writes refused"));
    assert.equal(errors.length, 2);
    assert.match(errors[1]!, /"forMs":3000/);
    assert.match(errors[1]!, new RegExp(`remove ${t.dir}/${RESERVE_FILE_NAME} \\(4096 bytes\\)`));

    t.engine.failure = null;
    t.clock.ms += 2_000;
    assert.deepEqual(t.guard.check(), { writable: true });
    assert.match(t.lines.at(-1)!, /INFO writes accepted again \{"afterMs":5000\}/);
  });
});

Deno.test("writes are fenced while the disk has less free than the reserve; the fence lifts by itself", async () => {
  await withGuard({ reserveBytes: 8192, availableBytes: 1 << 20 }, (t) => {
    assert.equal(t.guard.ensureReserve(), "created");
    assert.deepEqual(t.guard.check(), { writable: true });
    assert.equal(t.engine.fenced, false);

    t.space.availableBytes = 8191; // the disk filled: RocksDB is never let near the end of it
    const state = t.guard.check();
    assert.equal(t.engine.fenced, true);
    assert.equal(
      t.guard.cannotWrite(),
      "disk almost full: 8191 bytes free, less than the 8192 the store keeps free",
    );
    assert.equal(state.writable, false);
    assert.match(t.lines.at(-1)!, /remove .*space_placeholder_file \(8192 bytes\)/);

    t.space.availableBytes = 8191 + 8192; // the operator removed the reserve file
    Deno.removeSync(t.guard.reservePath);
    assert.deepEqual(t.guard.check(), { writable: true });
    assert.equal(t.engine.fenced, false);
    // Not enough room to take the reserve back yet (it would leave less than its share).
    assert.throws(() => Deno.statSync(t.guard.reservePath), Deno.errors.NotFound);
  });
});

Deno.test("a removed reserve comes back once the disk has room, never past its share of free space", async () => {
  const reserveBytes = 1000;
  const tooLittle = Math.floor(reserveBytes / RESERVE_SPACE_MAX_SHARE_OF_FREE) - 1;
  await withGuard({ reserveBytes, availableBytes: tooLittle }, (t) => {
    assert.equal(t.guard.ensureReserve(), "no-room");
    t.guard.check();
    assert.throws(() => Deno.statSync(t.guard.reservePath), Deno.errors.NotFound);
  });
  const enough = Math.ceil(reserveBytes / RESERVE_SPACE_MAX_SHARE_OF_FREE);
  await withGuard({ reserveBytes, availableBytes: enough }, (t) => {
    t.guard.check(); // a writable check renews the reserve
    assert.equal(Deno.statSync(t.guard.reservePath).size, reserveBytes);
    assert.equal(t.guard.ensureReserve(), "exists");
  });
});

Deno.test("an unknown free space or a zero reserve keeps no reserve file", async () => {
  await withGuard({ reserveBytes: 1000, availableBytes: null }, (t) => {
    assert.equal(t.guard.ensureReserve(), "no-room");
  });
  await withGuard({ reserveBytes: 0, availableBytes: 1 << 30 }, (t) => {
    assert.equal(t.guard.ensureReserve(), "none");
    t.engine.failure = NO_SPACE;
    t.guard.check();
    assert.doesNotMatch(t.lines.at(-1)!, /remove/);
  });
});
