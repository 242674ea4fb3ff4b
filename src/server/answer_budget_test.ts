/**
 * The answer budget, and every command that gathers a list answering within it: each is run as
 * the worker runs it (codec round trip, `runCommand`) with a small budget, so a store of a few
 * kilobytes stands for one of gigabytes. A command past its budget must answer `AnswerTooLarge`
 * in its error field and never a short list (see `answer_budget.ts` for why).
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { ANSWER_ENTRY_OVERHEAD_BYTES, ANSWER_MAX_BYTES } from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { utf8 } from "../util/bytes.ts";
import { AnswerBudget, unaryBudget } from "./answer_budget.ts";
import { COMMANDS_BY_NAME } from "./commands.ts";
import { Latches } from "./raw/latches.ts";
import { standaloneRegion } from "./region.ts";
import { runCommand } from "./respond.ts";
import type { StoreServices } from "./services.ts";
import { newTxnStore } from "./txn/store.ts";

const CONTEXT = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
/** Values of the test store: 20 keys of 100 bytes. */
const VALUE_BYTES = 100;
const KEYS = Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, "0")}`);
/** Bytes one stored pair takes from a budget. */
const PAIR_BYTES = 3 + VALUE_BYTES + ANSWER_ENTRY_OVERHEAD_BYTES;

function newServices(): StoreServices {
  const engine = new MemoryEngine();
  const region = standaloneRegion();
  return {
    regions: new Map([[region.id, region]]),
    raw: { engine, latches: new Latches(), syncLog: false, nowUnixSeconds: () => 1_000 },
    txn: newTxnStore(engine, { syncLog: false, latestTs: 1n }),
  };
}

// deno-lint-ignore no-explicit-any
type Answer = any;

/** Runs RPC `name` as the worker does, within `budget`; the answer decoded as a client sees it. */
async function call(
  services: StoreServices,
  name: string,
  request: object,
  budget: AnswerBudget = unaryBudget(),
): Promise<Answer> {
  const command = COMMANDS_BY_NAME.get(name)!;
  const decoded = command.requestCodec.decode(
    command.requestCodec.encode({ context: CONTEXT, ...request }).finish(),
  );
  const response = await runCommand(services, command, decoded, budget);
  return command.responseCodec.decode(command.responseCodec.encode(response).finish());
}

/** A store holding KEYS, raw and committed transactionally (start ts 10, commit ts 11). */
async function filledStore(): Promise<StoreServices> {
  const services = newServices();
  const value = new Uint8Array(VALUE_BYTES).fill(7);
  const pairs = KEYS.map((key) => ({ key: utf8(key), value }));
  assert.equal((await call(services, "RawBatchPut", { pairs })).error, "");
  const prewrite = await call(services, "KvPrewrite", {
    mutations: pairs.map((pair) => ({ op: kvrpcpb.Op.Put, ...pair })),
    primaryLock: utf8(KEYS[0]!),
    startVersion: 10n,
    lockTtl: 3000n,
  });
  assert.deepEqual(prewrite.errors, []);
  const commit = await call(services, "KvCommit", {
    keys: pairs.map((pair) => pair.key),
    startVersion: 10n,
    commitVersion: 11n,
  });
  assert.equal(commit.error, null);
  return services;
}

/** The abort message of an answer's error field, whichever shape the command uses. */
function abortOf(answer: Answer): string {
  const list = answer.kvs ?? answer.pairs ?? [];
  const fromList = list.length === 1 ? list[0].error?.abort : undefined;
  if (typeof answer.error === "string") return answer.error;
  return answer.error?.abort ?? fromList ?? "";
}

Deno.test("AnswerBudget: takes until the limit, refuses without taking, nests in a shared one", () => {
  const shared = new AnswerBudget(100);
  const first = new AnswerBudget(80, shared);
  const second = new AnswerBudget(80, shared);
  assert.equal(first.take(60), true);
  assert.equal(first.take(30), false, "own limit");
  assert.equal(first.usedBytes, 60);
  assert.equal(second.take(50), false, "shared limit: 60 + 50 > 100");
  assert.equal(second.leftBytes(), 40);
  assert.equal(second.take(40), true);
  const refusal = first.refusal("RawScan", 3);
  assert.deepEqual(refusal, {
    code: "AnswerTooLarge",
    rpc: "RawScan",
    entries: 3,
    limitBytes: 80,
    shared: false,
  });
  assert.equal(shared.usedBytes, 100, "a refused request's bytes stay counted: they were read");
  const third = new AnswerBudget(80, shared);
  assert.equal(third.take(1), false, "within its own 80, past the message's 100");
  assert.equal(third.refusal("RawGet", 0).shared, true, "the message's budget refused");
  assert.throws(() => new AnswerBudget(0), RangeError);
  assert.throws(() => first.take(-1), RangeError);
});

Deno.test("a unary budget holds one maximal entry", () => {
  assert.equal(unaryBudget().limitBytes, ANSWER_MAX_BYTES);
  assert.equal(unaryBudget().takeEntry(8 * 1024, 8 * 1024 * 1024 - 8 * 1024), true);
});

/** Each gathering command: a request for all 20 pairs, and the answer's list. */
const GATHERING: { rpc: string; request: object; list(answer: Answer): unknown[] }[] = [
  { rpc: "RawScan", request: { limit: 100 }, list: (a) => a.kvs },
  {
    rpc: "RawScan",
    request: { limit: 100, reverse: true, startKey: utf8("z") },
    list: (a) => a.kvs,
  },
  {
    rpc: "RawBatchScan",
    request: {
      ranges: [{ startKey: utf8("k00"), endKey: utf8("k10") }, { startKey: utf8("k10") }],
      eachLimit: 100,
    },
    list: (a) => a.kvs,
  },
  { rpc: "RawBatchGet", request: { keys: KEYS.map(utf8) }, list: (a) => a.pairs },
  { rpc: "KvScan", request: { limit: 100, version: 20n }, list: (a) => a.pairs },
  { rpc: "KvBatchGet", request: { keys: KEYS.map(utf8), version: 20n }, list: (a) => a.pairs },
];

Deno.test("gathering commands answer in full within their budget", async () => {
  const services = await filledStore();
  for (const { rpc, request, list } of GATHERING) {
    const budget = new AnswerBudget(KEYS.length * PAIR_BYTES);
    const answer = await call(services, rpc, request, budget);
    assert.equal(abortOf(answer), "", `${rpc}: no error`);
    assert.equal(list(answer).length, KEYS.length, `${rpc}: every pair`);
    assert.equal(budget.usedBytes, KEYS.length * PAIR_BYTES, `${rpc}: every pair counted`);
  }
});

Deno.test("gathering commands past their budget answer AnswerTooLarge, never a short list", async () => {
  const services = await filledStore();
  for (const { rpc, request } of GATHERING) {
    const budget = new AnswerBudget(KEYS.length * PAIR_BYTES - 1);
    const answer = await call(services, rpc, request, budget);
    const message = abortOf(answer);
    assert.match(message, new RegExp(`^${rpc}: answer would pass ${budget.limitBytes} bytes`));
    assert.match(message, /after 19 entries; ask for fewer/);
    const list = answer.kvs ?? answer.pairs;
    assert.ok(list === undefined || list.length <= 1, `${rpc}: no partial list (${list?.length})`);
    assert.equal(budget.usedBytes, 19 * PAIR_BYTES, `${rpc}: counted up to the refused pair`);
  }
});

Deno.test("point gets take their value from a BatchCommands message's shared budget", async () => {
  const services = await filledStore();
  const shared = new AnswerBudget(2 * PAIR_BYTES);
  const answers = [];
  for (const key of KEYS.slice(0, 3)) {
    const budget = new AnswerBudget(ANSWER_MAX_BYTES, shared);
    answers.push(await call(services, "RawGet", { key: utf8(key) }, budget));
  }
  assert.equal(answers[0].value.length, VALUE_BYTES);
  assert.equal(answers[1].value.length, VALUE_BYTES);
  assert.match(answers[2].error, /^RawGet: the answers of this BatchCommands message would pass/);
  const kvGet = await call(
    services,
    "KvGet",
    { key: utf8("k05"), version: 20n },
    new AnswerBudget(10, shared),
  );
  assert.match(kvGet.error.abort, /^KvGet: answer would pass 10 bytes/);
});

Deno.test("ScanLock counts its locks and answers AnswerTooLarge past its budget", async () => {
  const services = newServices();
  const mutations = KEYS.map((key) => ({ op: kvrpcpb.Op.Put, key: utf8(key), value: utf8("v") }));
  const prewrite = await call(services, "KvPrewrite", {
    mutations,
    primaryLock: utf8(KEYS[0]!),
    startVersion: 30n,
    lockTtl: 3000n,
  });
  assert.deepEqual(prewrite.errors, []);
  const request = { maxVersion: 40n, limit: 0 };
  const whole = await call(services, "KvScanLock", request);
  assert.equal(whole.locks.length, KEYS.length);
  const lockBytes = kvrpcpb.LockInfo.encode(whole.locks[0]).finish().length;
  const tight = new AnswerBudget(5 * (lockBytes + ANSWER_ENTRY_OVERHEAD_BYTES));
  const refused = await call(services, "KvScanLock", request, tight);
  assert.deepEqual(refused.locks, []);
  assert.match(refused.error.abort, /^KvScanLock: answer would pass \d+ bytes after 5 entries/);
  const fresh = new AnswerBudget(tight.limitBytes);
  const limited = await call(services, "KvScanLock", { maxVersion: 40n, limit: 5 }, fresh);
  assert.equal(limited.locks.length, 5, "a limit within the budget is answered in full");
  const tooMany = await call(services, "KvScanLock", { maxVersion: 40n, limit: 1 << 30 });
  assert.match(tooMany.error.abort, /scan lock limit \d+ exceeds/);
});

Deno.test("ScanLock pages through more locks than one page, in key order", async () => {
  const services = newServices();
  const keys = Array.from({ length: 600 }, (_, i) => `p${String(i).padStart(4, "0")}`);
  const prewrite = await call(services, "KvPrewrite", {
    mutations: keys.map((key) => ({ op: kvrpcpb.Op.Lock, key: utf8(key) })),
    primaryLock: utf8(keys[0]!),
    startVersion: 30n,
    lockTtl: 3000n,
  });
  assert.deepEqual(prewrite.errors, []);
  const all = await call(services, "KvScanLock", { maxVersion: 40n, limit: 0 });
  assert.deepEqual(all.locks.map((lock: Answer) => new TextDecoder().decode(lock.key)), keys);
  const some = await call(services, "KvScanLock", { maxVersion: 40n, limit: 300 });
  assert.equal(some.locks.length, 300);
});

Deno.test("MvccGetByKey counts every version and answers AnswerTooLarge past its budget", async () => {
  const services = await filledStore();
  const whole = await call(services, "MvccGetByKey", { key: utf8("k03") });
  assert.equal(whole.error, "");
  assert.equal(whole.info.writes.length, 1);
  const refused = await call(services, "MvccGetByKey", { key: utf8("k03") }, new AnswerBudget(64));
  assert.match(refused.error, /^MvccGetByKey: answer would pass 64 bytes/);
  assert.equal(refused.info, null);
  const byTs = await call(services, "MvccGetByStartTs", { startTs: 10n }, new AnswerBudget(64));
  assert.match(byTs.error, /^MvccGetByStartTs: answer would pass 64 bytes/);
});
