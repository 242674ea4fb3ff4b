/**
 * The race against etcd (issue #13 item 4), run by the cluster bench beside Basalt's cells:
 * etcd 3.4 as a 3-member cluster on loopback (`etcd_cluster.ts`), driven through
 * `etcdserverpb.KV` by a grpc-js client (`etcd_client.ts`), judged against Basalt's 3-replica
 * cluster driven through BatchCommands.
 *
 * Fairness, as this module and `cluster_bench.ts` arrange it:
 * - Same work: the same key space, loaded first; the same keys in the same scattered order
 *   (`benchKey(scatteredIndex(i, keys))`, gets one step ahead as Basalt's are); 100 B values;
 *   the same in-flight counts, closed loops and cell duration; the same load and warm-up.
 * - Same guarantees: a put is acknowledged once a quorum has fsynced it (Basalt's sync-log on,
 *   etcd's default WAL fsync); a get is linearizable (Basalt's leader reads under its lease,
 *   or through ReadIndex outside it; etcd's Range with serializable=false always goes through
 *   ReadIndex, its design, as etcd uses no lease reads).
 * - Same target: every request goes to the leader (Basalt's region leader's store, etcd's
 *   leader member's client URL), so neither pays a follower's forwarding hop.
 * - Same library: grpc-js on both sides. Basalt's client batches into BatchCommands streams
 *   over one connection, a protocol feature etcd lacks; etcd's gets one unary call per
 *   operation over ETCD_CLIENT_CHANNELS connections, as etcd's benchmark tool spreads clients
 *   over connections (`--conns`). Both clusters run through the whole grid and their cells
 *   alternate (which goes first swaps every cell), so a burst of load from other processes on
 *   this shared machine falls on both.
 */
import type { Summary, Verdict } from "./cluster_bench.ts";
import { EtcdKv } from "./etcd_client.ts";
import type { EtcdCluster } from "./etcd_cluster.ts";
import { formatFigure as fmt, printTable } from "./report.ts";
import { benchKey, scatteredIndex } from "./server_load.ts";

/** The operations a cell runs. */
export type Op = "put" | "get";

/** A system the cluster bench drives: its processes (leader first) and its put and get. */
export interface Contender {
  readonly name: string;
  /** Where its requests go. */
  readonly address: string;
  /** Processes whose CPU a cell accounts, leader first (null: not found). */
  readonly pids: readonly (number | null)[];
  /** Operation `i` of a cell of `op`: null on success, else what failed. */
  operation(op: Op): (i: number) => Promise<string | null>;
  close(): void;
}

/**
 * HTTP/2 connections of the etcd client. Measured here (3 members, 2 s cells at 64 and 256 in
 * flight, twice, load average 7–8): 1, 4 and 16 connections were within noise of each other
 * (puts 2.0–3.0k/s at 64 and 2.6–4.1k/s at 256, linearizable gets 1.7–3.6k/s, for each count),
 * and the client spent 140–250 µs of CPU per call in all three. Four is what a client of
 * several workers opens, and spares etcd a single connection's one reading goroutine.
 */
export const ETCD_CLIENT_CHANNELS = 4;
/** Members of the etcd cluster, as Basalt's cluster has three replicas. */
export const ETCD_MEMBERS = 3;
/** The in-flight count the race is judged at. */
export const RACE_JUDGED_IN_FLIGHT = 64;

/** Issue #13 item 4's targets, Basalt ÷ etcd at RACE_JUDGED_IN_FLIGHT. */
export const RACE_TARGETS = {
  putsOverEtcdAtLeast: 5,
  getsOverEtcdAtLeast: 5,
} as const;

/** TiKV's published RawKV YCSB workload A figure, for a line beside Basalt's. */
export const TIKV_RAW_YCSB_A = { updatesPerSecond: 43_200, hardware: "3 × 40 vCPU" } as const;

/** etcd's leader as a contender: `keys` keys of `value`, walked as Basalt's are. */
export async function etcdContender(
  cluster: EtcdCluster,
  options: { keys: number; value: Uint8Array; channels: number },
): Promise<Contender> {
  const leaderIndex = await cluster.leader();
  const leader = cluster.members[leaderIndex]!;
  const kv = new EtcdKv(leader.clientAddress, { channels: options.channels });
  const { keys, value } = options;
  return {
    name: "etcd",
    address: leader.clientAddress,
    pids: [leader, ...cluster.members.filter((m) => m !== leader)].map((m) => m.pid),
    operation: (op) =>
      op === "put"
        ? (i) => kv.put(benchKey(scatteredIndex(i, keys)), value)
        : (i) => kv.get(benchKey(scatteredIndex(i + 1, keys))),
    close: () => kv.close(),
  };
}

/** The verdicts of one (op, in-flight) cell of the race (none but at the judged count). */
export function raceVerdicts(
  op: Op,
  inFlight: number,
  sides: { basalt: Summary; etcd: Summary },
): Verdict[] {
  if (inFlight !== RACE_JUDGED_IN_FLIGHT) return [];
  const { basalt, etcd } = sides;
  const clean = basalt.errors === 0 && etcd.errors === 0;
  const ratio = basalt.opsPerSecond / etcd.opsPerSecond;
  const wanted = op === "put" ? RACE_TARGETS.putsOverEtcdAtLeast : RACE_TARGETS.getsOverEtcdAtLeast;
  const verdicts: Verdict[] = [{
    what: `3-replica ${op}s/s ÷ etcd's at ${inFlight} in flight`,
    target: `≥ ${wanted}×`,
    measured: `${Number.isFinite(ratio) ? ratio.toFixed(2) : "n/a"}× ` +
      `(${fmt(basalt.opsPerSecond)} / ${fmt(etcd.opsPerSecond)})`,
    met: clean && ratio >= wanted,
  }];
  if (op === "put") {
    verdicts.push({
      what: `3-replica put p99 vs etcd's at ${inFlight} in flight`,
      target: "≤ etcd's",
      measured: `${fmt(basalt.p99Ms, 2)} ms vs ${fmt(etcd.p99Ms, 2)} ms`,
      met: clean && basalt.p99Ms <= etcd.p99Ms,
    });
  }
  return verdicts;
}

/** Prints one table per operation, Basalt beside etcd; returns the verdicts. */
export function printRace(
  summaryOf: (side: "basalt" | "etcd", op: Op, inFlight: number) => Summary,
  how: { inFlight: readonly number[]; title: string },
): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const op of ["put", "get"] as const) {
    const lines = how.inFlight.map((inFlight) => {
      const basalt = summaryOf("basalt", op, inFlight);
      const etcd = summaryOf("etcd", op, inFlight);
      const cellVerdicts = raceVerdicts(op, inFlight, { basalt, etcd });
      verdicts.push(...cellVerdicts);
      const ratio = basalt.opsPerSecond / etcd.opsPerSecond;
      const errors = (s: Summary) => s.errors === 0 ? "0" : `${s.errors} (${s.firstError})`;
      return [
        `${inFlight}`,
        fmt(basalt.opsPerSecond),
        fmt(etcd.opsPerSecond),
        Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "n/a",
        `${fmt(basalt.p50Ms, 2)} / ${fmt(etcd.p50Ms, 2)}`,
        `${fmt(basalt.p99Ms, 2)} / ${fmt(etcd.p99Ms, 2)}`,
        `${fmt(basalt.cpuUsPerOp[0] ?? NaN)} / ${fmt(etcd.cpuUsPerOp[0] ?? NaN)}`,
        `${fmt(basalt.benchCpuUsPerOp)} / ${fmt(etcd.benchCpuUsPerOp)}`,
        `${errors(basalt)} / ${errors(etcd)}`,
        cellVerdicts.map((v) => `${v.target}: ${v.met ? "MET" : "MISS"}`).join(", "),
      ];
    });
    printTable(
      `${op === "put" ? "durable puts" : "linearizable gets"}: ${how.title}`,
      [
        "in flight",
        "Basalt ops/s",
        "etcd ops/s",
        "Basalt/etcd",
        "p50 ms Basalt / etcd",
        "p99 ms Basalt / etcd",
        "leader CPU µs/op B / e",
        "bench CPU µs/op B / e",
        "errors B / e",
        "target",
      ],
      lines,
    );
  }
  return verdicts;
}

/** The summary of the race: one markdown row per target, MET or MISS. */
export function printRaceTargets(verdicts: readonly Verdict[], note: string): void {
  console.log(`\n## cluster: the race against etcd (issue #13, item 4) — ${note}\n`);
  console.log("| target | wanted | measured | |");
  console.log("| --- | --- | --- | --- |");
  for (const v of verdicts) {
    console.log(`| ${v.what} | ${v.target} | ${v.measured} | ${v.met ? "MET" : "MISS"} |`);
  }
  console.log(
    `\nTiKV's published RawKV YCSB-A: ${fmt(TIKV_RAW_YCSB_A.updatesPerSecond)} updates/s on ` +
      `${TIKV_RAW_YCSB_A.hardware}; Basalt's 3-replica YCSB-A is printed beside it by ` +
      "`deno task bench -- --only ycsb-cluster` (its own cluster of ≥ 64 regions, a few minutes).",
  );
}
