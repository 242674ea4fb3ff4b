/**
 * The standalone half of the cluster benchmark: what the Raft log costs a single store. The
 * "direct path" is the tree before every write went through the region's log (commit
 * BASELINE_COMMIT); the "log path" is this tree. Both are measured in the same run, on the same
 * machine, with the same load, so the ratio holds even when absolute figures wander.
 *
 * - The baseline tree is exported with `git archive` into a temporary directory (git reads the
 *   repository and writes nothing to it: no worktree, no checkout) and removed afterwards. Without
 *   git or the commit, the comparison is skipped with the reason.
 * - Both stores run at once as `deno run -A --config <tree>/deno.json <tree>/src/server/main.ts`
 *   with their tree's default configuration (sync-log on), each on a fresh data directory. The
 *   cells alternate between them (direct, log; the next run log, direct), so a burst of load from
 *   other processes falls on both sides.
 * - Each store first takes STANDALONE_WARMUP_MS of puts (V8 warm-up), then each cell is a
 *   closed loop of raw puts (16 B keys, 100 B values) through BatchCommands at one
 *   in-flight count, for a fixed time; the store's CPU per put is read from /proc.
 */
import process from "node:process";
import type { kvrpcpb } from "../proto/mod.ts";
import { PdClient } from "../src/client/pd_client.ts";
import { StoreConnection } from "../src/client/transport.ts";
import { type TestProcess, testProcess } from "../tests/e2e/lib.ts";
import { type LoadResult, runClosedLoop } from "./server_load.ts";
import { operation } from "./server_bench.ts";
import { cpuSecondsOf, findProcessByArgument } from "./server_process.ts";

/** The last commit before the Raft log carried every write (the "direct path"). */
export const BASELINE_COMMIT = "ad2d13b";
/** How long `git archive` of the baseline may take. */
const EXTRACT_TIMEOUT_MS = 120_000;
/** How long a store's PD face may take to name region 1's leader after start. */
const REGION_READY_TIMEOUT_MS = 20_000;
/** How often the region's leader is asked for while waiting. */
const REGION_POLL_INTERVAL_MS = 100;
/** Puts at 256 in flight on each standalone store before its first cell (V8 warm-up). */
export const STANDALONE_WARMUP_MS = 5_000;
/** Sizes a cell's latency array: more puts per second than any store here reaches. */
export const CELL_MAX_OPS_PER_SECOND = 500_000;

/** A closed-loop cell with the CPU its store(s) spent per operation. */
export interface MeasuredCell extends LoadResult {
  /** CPU µs per operation of each measured process, in the order given (NaN without /proc). */
  cpuUsPerOp: number[];
  /** This (bench) process's CPU µs per operation. */
  benchCpuUsPerOp: number;
}

/** Runs `loop`, accounting the CPU time of the processes `pids` and of this process. */
export async function measureCell(
  pids: readonly (number | null)[],
  loop: () => Promise<LoadResult>,
): Promise<MeasuredCell> {
  const cpuOf = (pid: number | null) => (pid === null ? NaN : cpuSecondsOf(pid));
  const before = pids.map(cpuOf);
  const benchBefore = process.cpuUsage();
  const result = await loop();
  const bench = process.cpuUsage(benchBefore);
  const ops = Math.max(1, result.ops);
  return {
    ...result,
    cpuUsPerOp: pids.map((pid, i) => ((cpuOf(pid) - before[i]!) * 1e6) / ops),
    benchCpuUsPerOp: (bench.user + bench.system) / ops,
  };
}

/** Where to send a region's requests: its leader's store and the context naming the peer. */
export interface RegionTarget {
  address: string;
  context: kvrpcpb.Context.$Properties;
}

/**
 * Region 1 (the region holding key "") as `pd` reports it, once it has a leader and, if
 * `voters` is given, that many voters; fails after `timeoutMs` naming what it waited for.
 * `addressOf` maps the leader's store id to the address requests go to.
 */
export async function waitForRegionTarget(
  pd: PdClient,
  options: {
    voters?: number;
    timeoutMs: number;
    addressOf: (storeId: bigint) => Promise<string>;
  },
): Promise<RegionTarget> {
  const deadline = Date.now() + options.timeoutMs;
  let seen = "nothing";
  for (;;) {
    const located = await pd.getRegion(new Uint8Array(0)).catch((error) => {
      seen = `error ${(error as Error).message}`;
      return null;
    });
    if (located !== null) {
      const voters = located.region.peers?.filter((peer) => (peer.role ?? 0) === 0) ?? [];
      const leader = located.leader;
      seen = `${voters.length} voters, leader ${leader?.storeId ?? "none"}`;
      if (leader != null && (options.voters === undefined || voters.length === options.voters)) {
        return {
          address: await options.addressOf(leader.storeId ?? 0n),
          context: {
            regionId: located.region.id,
            regionEpoch: located.region.regionEpoch,
            peer: leader,
          },
        };
      }
    }
    if (Date.now() >= deadline) {
      const want = options.voters === undefined ? "a leader" : `${options.voters} voters`;
      throw new Error(`waited ${options.timeoutMs} ms for region 1 to have ${want}; saw ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, REGION_POLL_INTERVAL_MS));
  }
}

/** Runs `command` to completion within `timeoutMs`; returns its failure text or null. */
async function run(command: string, args: string[], timeoutMs: number): Promise<string | null> {
  try {
    const output = await new Deno.Command(command, {
      args,
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    if (output.success) return null;
    return `${command} ${args[0]} failed: ${new TextDecoder().decode(output.stderr).trim()}`;
  } catch (error) {
    return `${command} ${args[0]} could not run: ${(error as Error).message}`;
  }
}

/**
 * Exports commit `commit` of the repository at `repoRoot` into a new temporary directory, by
 * `git archive | tar -x` (nothing is written to the repository). Returns the directory, or the
 * reason it could not.
 */
export async function exportTree(
  repoRoot: string,
  commit: string,
): Promise<{ root: string } | { skipped: string }> {
  const verify = await run("git", ["-C", repoRoot, "cat-file", "-e", `${commit}^{commit}`], 10_000);
  if (verify !== null) return { skipped: `no commit ${commit} here (${verify})` };
  const root = await Deno.makeTempDir({ prefix: `basalt_baseline_${commit}_` });
  const archive = `${root}.tar`;
  try {
    const failed =
      await run("git", ["-C", repoRoot, "archive", "-o", archive, commit], EXTRACT_TIMEOUT_MS) ??
        await run("tar", ["-x", "-f", archive, "-C", root], EXTRACT_TIMEOUT_MS);
    if (failed !== null) {
      await Deno.remove(root, { recursive: true });
      return { skipped: failed };
    }
    return { root };
  } finally {
    await Deno.remove(archive).catch(() => {});
  }
}

/** A standalone store of some tree, started by `startTreeStore`. */
export interface TreeStore {
  readonly name: string;
  readonly dataDir: string;
  readonly pid: number | null;
  readonly target: RegionTarget;
  readonly connection: StoreConnection;
  /** Closes the connection, then stops the store; returns its exit code (-1: failed to stop). */
  stop(): Promise<number>;
}

/** Starts the standalone store of the tree at `treeRoot` on a fresh `dataDir`. */
export async function startTreeStore(
  { name, treeRoot, dataDir }: { name: string; treeRoot: string; dataDir: string },
): Promise<TreeStore> {
  const proc: TestProcess = testProcess({
    command: Deno.execPath(),
    args: ["run", "-A", "--config", `${treeRoot}/deno.json`, `${treeRoot}/src/server/main.ts`]
      .concat(["--addr", "127.0.0.1:0", "--status-addr", "127.0.0.1:0"])
      .concat(["--data-dir", dataDir, "--log-file", `${dataDir}.server.log`]),
    logPath: `${dataDir}.log`,
    ready: /basalt ready: grpc (\S+) status (\S+)/,
    what: `the ${name} store`,
  });
  const address = (await proc.launch())[1]!;
  let pd: PdClient | null = null;
  try {
    pd = await PdClient.connect([address]);
    const target = await waitForRegionTarget(pd, {
      timeoutMs: REGION_READY_TIMEOUT_MS,
      addressOf: () => Promise.resolve(address),
    });
    const connection = new StoreConnection(address);
    return {
      name,
      dataDir,
      pid: findProcessByArgument(dataDir),
      target,
      connection,
      stop: async () => {
        connection.close();
        // A pause first, as the server bench does: the store answers the closed streams before
        // it is told to stop.
        await new Promise((resolve) => setTimeout(resolve, 300));
        return await proc.stop().catch(() => -1);
      },
    };
  } catch (error) {
    await proc.stop().catch(() => {});
    throw error;
  } finally {
    pd?.close();
  }
}

/** The standalone comparison's figures: per in-flight count, every run of each side. */
export interface StandaloneResult {
  inFlight: readonly number[];
  direct: Map<number, MeasuredCell[]>;
  log: Map<number, MeasuredCell[]>;
}

/**
 * Measures raw puts at each of `inFlight` on the baseline tree's store ("direct") and this
 * tree's ("log"), `repeat` times, `cellMs` per cell. Returns the reason instead when the
 * baseline tree cannot be had.
 */
export async function benchStandaloneLog(options: {
  repoRoot: string;
  inFlight: readonly number[];
  keys: number;
  cellMs: number;
  repeat: number;
  value: Uint8Array;
}): Promise<StandaloneResult | { skipped: string }> {
  const baseline = await exportTree(options.repoRoot, BASELINE_COMMIT);
  if ("skipped" in baseline) return baseline;
  const workDir = await Deno.makeTempDir({ prefix: "basalt_bench_standalone_" });
  const stores: TreeStore[] = [];
  let finished = false;
  try {
    console.log(`cluster: standalone stores of ${BASELINE_COMMIT} (direct) and this tree (log)…`);
    stores.push(
      await startTreeStore({
        name: `direct (${BASELINE_COMMIT})`,
        treeRoot: baseline.root,
        dataDir: `${workDir}/direct`,
      }),
    );
    stores.push(
      await startTreeStore({ name: "log", treeRoot: options.repoRoot, dataDir: `${workDir}/log` }),
    );
    const [direct, log] = stores as [TreeStore, TreeStore];
    for (const store of stores) {
      await runClosedLoop(
        operation(store.connection, {
          op: "put",
          keySpace: options.keys,
          value: options.value,
          context: store.target.context,
        }),
        {
          ops: Math.ceil((CELL_MAX_OPS_PER_SECOND * STANDALONE_WARMUP_MS) / 1000),
          inFlight: 256,
          maxMs: STANDALONE_WARMUP_MS,
        },
      );
    }
    const result: StandaloneResult = {
      inFlight: options.inFlight,
      direct: new Map(),
      log: new Map(),
    };
    for (let run = 0; run < options.repeat; run++) {
      for (const inFlight of options.inFlight) {
        const order = run % 2 === 0 ? [direct, log] : [log, direct];
        for (const store of order) {
          const cell = await measureCell([store.pid], () =>
            runClosedLoop(
              operation(store.connection, {
                op: "put",
                keySpace: options.keys,
                value: options.value,
                context: store.target.context,
              }),
              {
                ops: Math.ceil((CELL_MAX_OPS_PER_SECOND * options.cellMs) / 1000),
                inFlight,
                maxMs: options.cellMs,
              },
            ));
          const cells = store === direct ? result.direct : result.log;
          cells.set(inFlight, [...(cells.get(inFlight) ?? []), cell]);
        }
      }
    }
    finished = true;
    return result;
  } finally {
    for (const store of stores) {
      const code = await store.stop();
      if (code !== 0) console.log(`cluster: the ${store.name} store exited with code ${code}`);
    }
    if (finished) await Deno.remove(workDir, { recursive: true });
    else console.error(`cluster: kept the standalone stores' data and logs in ${workDir}`);
    await Deno.remove(baseline.root, { recursive: true });
  }
}
