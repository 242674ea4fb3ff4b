/**
 * The register workload of the cluster simulator: a few logical clients doing get, put and
 * compare-and-swap on a few keys, routed by region, checked at the end for linearizability
 * (sim/linearizability.ts).
 *
 * Each store has a front, as a store's storage layer has (TiKV's latches): a put or a CAS holds
 * its key's latch on that store from the call until the store answers. A CAS reads the key
 * (lease or ReadIndex, through the store) and, if it holds the expected value, proposes the put
 * through the same leader peer in the same step — the read and the write of one leader term with
 * no other write of the key between them on that leader, which is what makes it atomic.
 *
 * Routing: even clients ask the oracle for the region's current leader each time (PD); odd
 * clients keep the store they last learnt from a NotLeader answer, so they reach deposed and
 * brand-new leaders. The region comes from the oracle; the epoch from the chosen store's replica.
 *
 * History rules (as src/raftstore/linearizability_test.ts): call and return times come from one
 * counter, taken when the client calls and when the store answers, so real-time order is exact.
 * A write refused with an error that means "not applied" is left out; one whose outcome is
 * unknown (StaleCommand, StoreStopped, no answer by the client's deadline) stays with return ∞.
 * Failed reads, and reads whose region no longer holds the key, are left out.
 *
 * @module
 */

import { checkLinearizable, type KvOperation } from "../linearizability.ts";
import type { CmdResult } from "../../src/raftstore/apply.ts";
import { keyInRegion, writeCommand } from "../../src/raftstore/command.ts";
import { describeRegionError, outcomeUnknown } from "../../src/raftstore/errors.ts";
import type { ReadResult } from "../../src/raftstore/peer.ts";
import { type Cluster, put } from "../../src/raftstore/testing/cluster.ts";
import { utf8 } from "../../src/util/bytes.ts";
import type { SeededRandom } from "../../src/util/random.ts";

/** The register keys (split points fall between and on them). */
export const REGISTER_KEYS = ["b", "e", "h", "k"];
/** Logical clients of the workload. */
export const REGISTER_CLIENTS = 5;
/** Ticks a client waits for an answer before it gives up (a write's outcome is then unknown). */
export const CLIENT_DEADLINE_TICKS = 25;
/** Chance per round that an idle client issues its next operation. */
const ISSUE_PER_ROUND = 0.3;

interface Pending {
  op: KvOperation;
  issuedAtTick: number;
  /** Set once recorded (answered, or given up). */
  settled: boolean;
  /** A liveness probe: retried until a put of it is acknowledged. */
  probe: boolean;
}

/** Counts of what the workload did. */
export interface WorkloadStats {
  calls: number;
  acknowledgedWrites: number;
  reads: number;
  casSwapped: number;
  casRefused: number;
  unknown: number;
}

/** Clients, fronts and the history (module header). */
export class RegisterWorkload {
  readonly history: KvOperation[] = [];
  readonly stats: WorkloadStats = {
    calls: 0,
    acknowledgedWrites: 0,
    reads: 0,
    casSwapped: 0,
    casRefused: 0,
    unknown: 0,
  };
  #clock = 0;
  #written = 0;
  readonly #latches = new Set<string>();
  readonly #pending: (Pending | undefined)[];
  readonly #cachedStore: Map<bigint, bigint>[];
  /** The last value each client saw per key (what its next CAS expects). */
  readonly #lastSeen: Map<string, string | undefined>[];
  /** Keys whose liveness probe is not acknowledged yet; undefined before probes start. */
  #probesLeft: Set<string> | undefined;
  #issuing = true;

  constructor(
    readonly c: Cluster,
    readonly random: SeededRandom,
    readonly trace: (line: string) => void,
  ) {
    const clients = REGISTER_CLIENTS + REGISTER_KEYS.length;
    this.#pending = Array.from({ length: clients }, () => undefined);
    this.#cachedStore = Array.from({ length: clients }, () => new Map());
    this.#lastSeen = Array.from({ length: clients }, () => new Map());
  }

  /** From now on, one probe client per key puts until acknowledged (the liveness check). */
  startProbes(): void {
    this.#probesLeft = new Set(REGISTER_KEYS);
  }

  /** True once every probe put was acknowledged. */
  probesDone(): boolean {
    return this.#probesLeft !== undefined && this.#probesLeft.size === 0;
  }

  /** Stops issuing new operations (the drain before the final checks). */
  stopIssuing(): void {
    this.#issuing = false;
  }

  /** Operations still waiting for an answer. */
  pendingCount(): number {
    return this.#pending.filter((p) => p !== undefined).length;
  }

  /** Once per round: give up on late answers, issue new operations. */
  step(): void {
    for (let i = 0; i < this.#pending.length; i++) {
      const p = this.#pending[i];
      if (p !== undefined && this.c.ticks - p.issuedAtTick > CLIENT_DEADLINE_TICKS) {
        this.giveUp(i, p);
      }
      if (this.#pending[i] !== undefined || !this.#issuing) continue;
      if (i >= REGISTER_CLIENTS) {
        const key = REGISTER_KEYS[i - REGISTER_CLIENTS]!;
        if (this.#probesLeft?.has(key) === true) this.issue(i, key, "put");
      } else if (this.random.chance(ISSUE_PER_ROUND)) {
        const kind = this.random.pick(["get", "get", "put", "put", "cas"] as const);
        this.issue(i, this.random.pick(REGISTER_KEYS), kind);
      }
    }
  }

  /** Gives up on every waiting operation (end of the run). */
  giveUpAll(): void {
    this.#pending.forEach((p, i) => p !== undefined && this.giveUp(i, p));
  }

  /** The linearizability verdict of the history so far. */
  check(): ReturnType<typeof checkLinearizable> {
    return checkLinearizable(this.history);
  }

  private giveUp(i: number, p: Pending): void {
    this.#pending[i] = undefined;
    this.#cachedStore[i]!.clear();
    if (p.settled) return;
    p.settled = true;
    if (p.op.kind === "get") return;
    this.stats.unknown++;
    this.history.push({ ...p.op, ret: Infinity });
    this.trace(`c${p.op.clientId} #${p.op.call} gave up (outcome unknown)`);
  }

  private chooseStore(i: number, regionId: bigint): bigint | undefined {
    const c = this.c;
    const cached = i % 2 === 0 || i >= REGISTER_CLIENTS
      ? c.leader(regionId)?.meta.storeId
      : this.#cachedStore[i]!.get(regionId);
    if (cached !== undefined && c.isUp(cached)) return cached;
    const live = c.storeIds.filter((id) => c.isUp(id));
    return live.length === 0 ? undefined : this.random.pick(live);
  }

  private issue(i: number, key: string, kind: "get" | "put" | "cas"): void {
    const c = this.c;
    const regionId = c.regionOfKey(key);
    const storeId = this.chooseStore(i, regionId);
    if (storeId === undefined) return;
    const store = c.store(storeId);
    const latch = `${storeId}/${key}`;
    if (kind !== "get" && this.#latches.has(latch)) return; // Waits for the latch: try later.
    const peer = store.peer(regionId);
    if (peer === undefined || !peer.isInitialized()) {
      this.#cachedStore[i]!.delete(regionId);
      return;
    }
    const value = kind === "get" ? undefined : `${kind === "put" ? "p" : "c"}${++this.#written}`;
    const op: KvOperation = { clientId: i, kind, key, value, call: ++this.#clock, ret: Infinity };
    if (kind === "cas") op.expected = this.#lastSeen[i]!.get(key);
    const p: Pending = { op, issuedAtTick: c.ticks, settled: false, probe: i >= REGISTER_CLIENTS };
    this.#pending[i] = p;
    this.stats.calls++;
    this.trace(
      `c${i} #${op.call} ${kind} ${key}${value === undefined ? "" : `=${value}`}` +
        `${
          kind === "cas" ? ` if ${op.expected ?? "<absent>"}` : ""
        } via store ${storeId} region ${regionId}`,
    );
    if (kind === "get") {
      store.read(regionId, (r) => this.onRead(i, p, r));
      return;
    }
    this.#latches.add(latch);
    const release = () => this.#latches.delete(latch);
    if (kind === "put") {
      const cmd = writeCommand(peer.region(), peer.meta, [put(key, value!)]);
      store.propose(regionId, cmd, (r) => {
        release();
        this.onWrite(i, p, r);
      });
      return;
    }
    store.read(regionId, (r) => this.onCasRead(i, { p, r, release, storeId }));
  }

  private finish(i: number, p: Pending): boolean {
    if (this.#pending[i] === p) this.#pending[i] = undefined;
    if (p.settled) return false;
    p.settled = true;
    return true;
  }

  private learn(i: number, r: CmdResult | ReadResult, regionId: bigint): void {
    if (r.ok) return;
    const e = r.error;
    const leader = e.code === "NotLeader" ? e.leader?.storeId : undefined;
    if (leader === undefined) this.#cachedStore[i]!.delete(regionId);
    else this.#cachedStore[i]!.set(regionId, leader);
  }

  private onRead(i: number, p: Pending, r: ReadResult): void {
    const value = r.ok ? readKey(r, p.op.key) : undefined;
    if (!this.finish(i, p)) return;
    this.learn(i, r, r.ok ? r.region.id : r.error.regionId);
    if (value === undefined) {
      this.trace(
        `c${i} #${p.op.call} get failed: ${r.ok ? "key moved" : describeRegionError(r.error)}`,
      );
      return;
    }
    const ret = ++this.#clock;
    this.history.push({ ...p.op, value: value.value, ret });
    this.#lastSeen[i]!.set(p.op.key, value.value);
    this.stats.reads++;
    this.trace(`c${i} #${p.op.call} got ${value.value ?? "<absent>"} at ${ret}`);
  }

  private onWrite(i: number, p: Pending, r: CmdResult): void {
    if (!this.finish(i, p)) return;
    const regionId = r.ok ? 0n : r.error.regionId;
    this.learn(i, r, regionId);
    if (r.ok) {
      const ret = ++this.#clock;
      this.history.push({ ...p.op, ...(p.op.kind === "cas" ? { swapped: true } : {}), ret });
      this.#lastSeen[i]!.set(p.op.key, p.op.value);
      this.stats.acknowledgedWrites++;
      if (p.op.kind === "cas") this.stats.casSwapped++;
      if (p.probe) this.#probesLeft?.delete(p.op.key);
      this.trace(`c${i} #${p.op.call} ${p.op.kind} ok at ${ret} (index ${r.index})`);
    } else if (outcomeUnknown(r.error)) {
      this.history.push({ ...p.op, ret: Infinity });
      this.stats.unknown++;
      this.trace(`c${i} #${p.op.call} outcome unknown: ${describeRegionError(r.error)}`);
    } else {
      this.trace(`c${i} #${p.op.call} not applied: ${describeRegionError(r.error)}`);
    }
  }

  /** A CAS's read came back: refuse, or propose the put through the same leader now. */
  private onCasRead(
    i: number,
    cas: { p: Pending; r: ReadResult; release: () => void; storeId: bigint },
  ): void {
    const { p, r, release, storeId } = cas;
    const current = r.ok ? readKey(r, p.op.key) : undefined;
    if (current === undefined || !r.ok) {
      release();
      if (!this.finish(i, p)) return;
      this.learn(i, r, r.ok ? r.region.id : r.error.regionId);
      this.trace(`c${i} #${p.op.call} cas read failed`);
      return;
    }
    if (current.value !== p.op.expected) {
      release();
      this.#lastSeen[i]!.set(p.op.key, current.value);
      if (!this.finish(i, p)) return;
      const ret = ++this.#clock;
      this.history.push({ ...p.op, swapped: false, previous: current.value, ret });
      this.stats.casRefused++;
      this.trace(`c${i} #${p.op.call} cas refused, saw ${current.value ?? "<absent>"} at ${ret}`);
      return;
    }
    // The same step as the read's answer: no other write of the key can come between (header).
    const leader = this.c.isUp(storeId) ? this.c.store(storeId).peer(r.region.id) : undefined;
    if (leader === undefined || !leader.isLeader()) {
      release();
      if (this.finish(i, p)) this.trace(`c${i} #${p.op.call} cas: leader gone before the write`);
      return;
    }
    const cmd = writeCommand(r.region, leader.meta, [put(p.op.key, p.op.value!)]);
    leader.propose(cmd, (w) => {
      release();
      this.onWrite(i, p, w);
    });
  }
}

/** The key's value in a granted read, or undefined if the read's region does not hold the key. */
function readKey(
  r: Extract<ReadResult, { ok: true }>,
  key: string,
): { value: string | undefined } | undefined {
  try {
    if (!keyInRegion(utf8(key), r.region)) return undefined;
    const bytes = r.snapshot.get("default", utf8(key));
    return { value: bytes === null ? undefined : new TextDecoder().decode(bytes) };
  } finally {
    r.snapshot.release();
  }
}
