/**
 * The timestamp oracle against PD's guarantees (`pkg/tso/tso.go`): strictly increasing
 * timestamps under a clock that steps back, across restarts with the clock behind the saved
 * window, through logical overflow, with batches returning their last timestamp.
 */
import assert from "node:assert/strict";
import { SeededRandom } from "../util/random.ts";
import {
  TSO_LOGICAL_BITS,
  TSO_MAX_COUNT,
  TSO_MAX_LOGICAL,
  TSO_RENEW_MARGIN_MS,
  TSO_SAVE_WINDOW_MS,
  TSO_UPDATE_GUARD_MS,
} from "./constants.ts";
import { MemoryValueStore } from "./memory_value_store.ts";
import { composeTimestamp, TimestampOracle, TsoError } from "./oracle.ts";
import type { LogFields } from "./types.ts";

class ManualClock {
  constructor(public ms: number) {}
  nowMs(): number {
    return this.ms;
  }
}

class RecordingLog {
  readonly lines: { message: string; fields: LogFields }[] = [];
  warn(message: string, fields: LogFields = {}): void {
    this.lines.push({ message, fields });
  }
}

const physicalOf = (ts: bigint) => Number(ts >> BigInt(TSO_LOGICAL_BITS));
const logicalOf = (ts: bigint) => Number(ts & BigInt(TSO_MAX_LOGICAL - 1));

function open(clock: ManualClock, store = new MemoryValueStore(), log = new RecordingLog()) {
  return { oracle: TimestampOracle.open({ clock, store, log }), store, log };
}

Deno.test("open() saves a window ahead of the wall clock before issuing anything", () => {
  const clock = new ManualClock(1_000_000);
  const { oracle, store } = open(clock);
  assert.deepEqual(store.saves, [BigInt(1_000_000 + TSO_SAVE_WINDOW_MS)]);
  const batch = oracle.next();
  assert.equal(batch.physicalMs, 1_000_000n);
  assert.equal(batch.logical, 1n);
  assert.equal(batch.last, composeTimestamp(1_000_000, 1));
});

Deno.test("timestamps keep increasing while the wall clock steps backwards", () => {
  const clock = new ManualClock(5_000_000);
  const { oracle, log } = open(clock);
  const issued = [oracle.next().last];
  clock.ms += 10;
  issued.push(oracle.next().last);
  clock.ms -= 60_000; // NTP steps the clock a minute back
  for (let i = 0; i < 100; i++) issued.push(oracle.next(7).last);
  clock.ms += 59_990; // still behind the oracle
  issued.push(oracle.next().last);
  for (let i = 1; i < issued.length; i++) assert.ok(issued[i]! > issued[i - 1]!, `at ${i}`);
  // The physical part stayed where the clock had been; only the logical part moved.
  assert.equal(physicalOf(issued.at(-1)!), 5_000_010);
  assert.equal(logicalOf(issued.at(-1)!), 1 + 100 * 7 + 1);
  assert.equal(log.lines.length, 1, "one warning for one step back");
  assert.match(log.lines[0]!.message, /wall clock stepped back/);
  clock.ms = 5_000_020; // the clock catches up: the physical part follows it again
  assert.equal(oracle.next().physicalMs, 5_000_020n);
});

Deno.test("a restart with the wall clock behind the saved window begins above the saved bound", () => {
  const clock = new ManualClock(2_000_000);
  const store = new MemoryValueStore();
  const first = open(clock, store).oracle;
  let lastBefore = 0n;
  for (let ms = 0; ms < 10_000; ms += 250) {
    clock.ms = 2_000_000 + ms;
    lastBefore = first.next(3).last;
  }
  const savedBound = Number(store.load());
  assert.ok(physicalOf(lastBefore) < savedBound);

  clock.ms = 1_000_000; // the machine restarts with its clock far behind
  const log = new RecordingLog();
  const second = open(clock, store, log).oracle;
  const after = second.next();
  assert.ok(after.last > lastBefore);
  assert.equal(Number(after.physicalMs), savedBound + TSO_UPDATE_GUARD_MS);
  assert.equal(Number(store.load()), savedBound + TSO_UPDATE_GUARD_MS + TSO_SAVE_WINDOW_MS);
  assert.match(log.lines[0]!.message, /system time may be incorrect/);
});

Deno.test("a restart inside the saved window begins above the bound without a clock warning", () => {
  // The saved bound runs one window ahead of the clock by design (PD's scheme), so a store that
  // restarts within TSO_SAVE_WINDOW_MS of its last renewal finds the clock below the bound.
  const clock = new ManualClock(2_500_000);
  const store = new MemoryValueStore();
  const first = open(clock, store).oracle;
  let lastBefore = 0n;
  for (let ms = 0; ms < 5_000; ms += 100) {
    clock.ms = 2_500_000 + ms;
    lastBefore = first.next().last;
  }
  const savedBound = Number(store.load());
  clock.ms += 200; // a quick restart: the clock moved on, but is still below the bound
  assert.ok(clock.ms < savedBound);
  const log = new RecordingLog();
  const second = open(clock, store, log).oracle;
  // The wall clock catches up with the TSO over the next window: still nothing is wrong.
  for (let step = 0; step < 40; step++) {
    const batch = second.next();
    assert.ok(batch.last > lastBefore);
    lastBefore = batch.last;
    clock.ms += 100;
  }
  assert.equal(Number(physicalOf(lastBefore)), clock.ms - 100, "the TSO follows the clock again");
  assert.deepEqual(log.lines, [], "no clock warning for a TSO ahead by design");
});

Deno.test("quick restarts, one after another, warn nothing while the clock runs forward", () => {
  // Each restart begins above the last bound and saves a window above that, so after a few
  // quick restarts the bound is several windows ahead of the clock: still nothing is wrong.
  const clock = new ManualClock(2_600_000);
  const store = new MemoryValueStore(null, { clock });
  const log = new RecordingLog();
  let previous = 0n;
  for (let restart = 0; restart < 10; restart++) {
    const oracle = open(clock, store, log).oracle;
    for (let step = 0; step < 5; step++) {
      clock.ms += 100;
      const batch = oracle.next();
      assert.ok(batch.last > previous);
      previous = batch.last;
    }
    clock.ms += 300; // stop and start again
  }
  assert.ok(Number(store.load()) - clock.ms > 3 * TSO_SAVE_WINDOW_MS, "the bound ran ahead");
  assert.deepEqual(log.lines, []);
});

Deno.test("a restart with the clock behind the time of the last save warns once", () => {
  const clock = new ManualClock(2_800_000);
  const store = new MemoryValueStore(null, { clock });
  open(clock, store).oracle.next();
  clock.ms -= 60_000; // NTP stepped the clock back while the store was down
  const { log } = open(clock, store, new RecordingLog());
  assert.equal(log.lines.length, 1);
  assert.match(log.lines[0]!.message, /system time may be incorrect/);
  assert.equal(log.lines[0]!.fields.savedAtMs, 2_800_000);
});

Deno.test("borrowing milliseconds ahead of a steady clock is no clock warning", () => {
  const clock = new ManualClock(2_700_000);
  const { oracle, log } = open(clock);
  for (let i = 0; i < 20; i++) oracle.next(TSO_MAX_COUNT);
  assert.ok(physicalOf(oracle.lastIssued) > clock.ms + 10, "the TSO ran ahead of the clock");
  clock.ms += 1;
  oracle.next();
  assert.deepEqual(log.lines, []);
});

Deno.test("logical overflow moves to the next millisecond, ahead of a frozen wall clock", () => {
  const clock = new ManualClock(3_000_000);
  const { oracle, store } = open(clock);
  const full = oracle.next(TSO_MAX_COUNT);
  assert.equal(full.physicalMs, 3_000_000n);
  assert.equal(full.logical, BigInt(TSO_MAX_COUNT));
  const next = oracle.next(2);
  assert.equal(next.physicalMs, 3_000_001n);
  assert.equal(next.logical, 2n);
  assert.equal(next.first, full.last + (1n << BigInt(TSO_LOGICAL_BITS)) - full.logical + 1n);

  // With the clock frozen, a flood of batches borrows milliseconds far ahead of it, renewing
  // the saved window before each run-out; no timestamp ever reaches the saved bound.
  let previous = next.last;
  for (let i = 0; i < 40_000; i++) {
    const batch = oracle.next(100_000);
    assert.ok(batch.first > previous);
    assert.ok(Number(batch.physicalMs) < Number(store.load()));
    previous = batch.last;
  }
  assert.ok(physicalOf(previous) > 3_000_000 + TSO_SAVE_WINDOW_MS, "borrowed past one window");
  assert.ok(store.saves.length > 2, "the window was renewed");
});

Deno.test("next(count) returns the last of count consecutive timestamps, as PD's Tso does", () => {
  const clock = new ManualClock(4_000_000);
  const { oracle } = open(clock);
  const a = oracle.next(10);
  const b = oracle.next(10);
  assert.equal(a.count, 10);
  assert.equal(a.last - a.first, 9n);
  assert.equal(a.logical, 10n);
  assert.equal(b.first, a.last + 1n);
  assert.equal(b.last, composeTimestamp(4_000_000, 20));
});

Deno.test("a count outside [1, TSO_MAX_COUNT] is refused with InvalidCount and issues nothing", () => {
  const { oracle } = open(new ManualClock(1_000));
  const before = oracle.lastIssued;
  for (const count of [0, -1, 1.5, Number.NaN, TSO_MAX_COUNT + 1]) {
    assert.throws(
      () => oracle.next(count),
      (error: unknown) => error instanceof TsoError && error.code === "InvalidCount",
    );
  }
  assert.equal(oracle.lastIssued, before);
});

Deno.test("the window is renewed before it runs out, and every issued physical part is below it", () => {
  const clock = new ManualClock(6_000_000);
  const { oracle, store } = open(clock);
  for (let ms = 0; ms <= 20_000; ms += 100) {
    clock.ms = 6_000_000 + ms;
    const batch = oracle.next();
    assert.ok(Number(batch.physicalMs) < Number(store.load()));
    assert.ok(
      Number(store.load()) - Number(batch.physicalMs) > TSO_RENEW_MARGIN_MS - 100,
      "renewed ahead of need, not at the bound",
    );
  }
  for (let i = 1; i < store.saves.length; i++) assert.ok(store.saves[i]! > store.saves[i - 1]!);
  const expected = 20_000 / (TSO_SAVE_WINDOW_MS - TSO_RENEW_MARGIN_MS);
  assert.ok(store.saves.length <= expected + 2, `${store.saves.length} saves in 20 s`);
});

Deno.test("tick() follows the wall clock and renews the window while no requests arrive", () => {
  const clock = new ManualClock(7_000_000);
  const { oracle, store } = open(clock);
  clock.ms += TSO_SAVE_WINDOW_MS - TSO_RENEW_MARGIN_MS + 10;
  oracle.tick();
  assert.equal(store.saves.length, 2);
  assert.equal(Number(store.load()), clock.ms + TSO_SAVE_WINDOW_MS);
  assert.equal(physicalOf(oracle.lastIssued), clock.ms);
});

Deno.test("a failed save issues nothing and the oracle recovers on the next call", () => {
  const clock = new ManualClock(8_000_000);
  const { oracle, store } = open(clock);
  const before = oracle.next().last;
  clock.ms += 60_000; // past the saved bound: the next batch needs a new window
  store.failNextSave = true;
  assert.throws(() => oracle.next(), /injected save failure/);
  assert.equal(oracle.lastIssued, before);
  const after = oracle.next();
  assert.equal(Number(after.physicalMs), clock.ms);
  assert.equal(Number(store.load()), clock.ms + TSO_SAVE_WINDOW_MS);
});

Deno.test("a saved bound outside the physical range is refused, not reset", () => {
  const store = new MemoryValueStore(1n << 62n);
  assert.throws(
    () => TimestampOracle.open({ clock: new ManualClock(1), store }),
    (error: unknown) => error instanceof TsoError && error.code === "InvalidSavedBound",
  );
  assert.deepEqual(store.saves, []);
});

Deno.test("model: random clock steps, batches, ticks and restarts never repeat a timestamp", () => {
  for (let seed = 1; seed <= 30; seed++) {
    const random = new SeededRandom(seed);
    const clock = new ManualClock(10_000_000);
    const store = new MemoryValueStore();
    let oracle = TimestampOracle.open({ clock, store });
    let previous = -1n;
    for (let step = 0; step < 400; step++) {
      const roll = random.int(100);
      if (roll < 25) clock.ms += random.int(5_000);
      else if (roll < 35) clock.ms = Math.max(0, clock.ms - random.int(20_000));
      else if (roll < 40) oracle = TimestampOracle.open({ clock, store });
      else if (roll < 45) oracle.tick();
      else {
        const count = random.chance(0.2) ? 1 + random.int(TSO_MAX_COUNT) : 1 + random.int(64);
        const batch = oracle.next(count);
        assert.ok(batch.first > previous, `seed ${seed} step ${step}: ${batch.first}`);
        assert.equal(batch.last - batch.first, BigInt(count - 1));
        assert.ok(Number(batch.physicalMs) < Number(store.load()), `seed ${seed} bound`);
        previous = batch.last;
      }
    }
  }
});
