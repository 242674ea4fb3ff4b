/**
 * An etcd cluster on loopback for the cluster bench's race against etcd: `members` processes of
 * the system's `etcd` (Debian's etcd-server, 3.4), started fresh and stopped and removed after.
 *
 * - Layout: one temporary root; member I (named mI) keeps its data in `<root>/mI` and its
 *   output in `<root>/mI.log`. Client and peer ports are fixed before the start
 *   (`freeLoopbackPort`), as etcd's `--initial-cluster` must name every peer URL.
 * - Configuration: etcd's defaults (the WAL is fsynced before a write is acknowledged; 100 ms
 *   heartbeats, 1 s election timeout), plain HTTP on 127.0.0.1, a cluster token of its own.
 * - Ready: every member answers /metrics with `etcd_server_has_leader 1` and exactly one with
 *   `etcd_server_is_leader 1`; a member that exits first fails the start with its log's tail.
 * - Stop: SIGTERM, then SIGKILL after ETCD_STOP_TIMEOUT_MS; the root is removed. A start that
 *   fails stops what it started and removes the root too (the error carries the log's tail).
 *   Each member runs under `setpriv --pdeathsig KILL` where setpriv exists, so a bench process
 *   that dies takes its members with it; SIGINT (Ctrl+C) or SIGTERM while the cluster runs
 *   kills the members and removes the root before the bench exits.
 */
import { freeLoopbackPort } from "../tests/e2e/lib.ts";
import { dieWithParent } from "../tests/e2e/cluster.ts";

/** The server binary looked up on PATH. */
export const ETCD_COMMAND = "etcd";
/** How long the members may take to elect a leader after they start. */
export const ETCD_START_TIMEOUT_MS = 30_000;
/** How long a member may take to exit after SIGTERM before it is killed. */
export const ETCD_STOP_TIMEOUT_MS = 10_000;
/** How often readiness and leadership are polled. */
export const ETCD_POLL_INTERVAL_MS = 100;
/** How long one /metrics request may take. */
const METRICS_TIMEOUT_MS = 2_000;
/** The most members a cluster may have. */
export const ETCD_MAX_MEMBERS = 7;
/** Bytes of a member's log quoted when it fails. */
const LOG_TAIL_BYTES = 2_000;

/** Signals that end the bench, on which the members are killed and the root removed. */
const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** One running member. */
export interface EtcdMember {
  readonly name: string;
  /** host:port of its gRPC (client) endpoint. */
  readonly clientAddress: string;
  readonly dataDir: string;
  readonly pid: number;
}

/** A running cluster; `stop()` ends it. */
export interface EtcdCluster {
  readonly root: string;
  readonly members: readonly EtcdMember[];
  /** The index in `members` of the member that reports itself leader. */
  leader(): Promise<number>;
  /** Stops every member and removes the root. */
  stop(): Promise<void>;
}

/** etcd's version line (e.g. "3.4.23"), or why etcd cannot be run. */
export function etcdVersion(): { version: string } | { missing: string } {
  try {
    const output = new Deno.Command(ETCD_COMMAND, { args: ["--version"], stderr: "piped" })
      .outputSync();
    const text = new TextDecoder().decode(output.stdout);
    const version = /etcd Version: (\S+)/.exec(text)?.[1];
    if (!output.success || version === undefined) {
      return { missing: `"${ETCD_COMMAND} --version" did not name a version` };
    }
    return { version };
  } catch (error) {
    return {
      missing: `no ${ETCD_COMMAND} on PATH (${(error as Error).name}); install it with: ` +
        "sudo apt-get install -y etcd-server",
    };
  }
}

interface Spawned {
  member: EtcdMember;
  child: Deno.ChildProcess;
  log: Deno.FsFile;
  /** Settles once the member's output is all written to its log. */
  drained: Promise<void>;
  exited: boolean;
}

/**
 * Copies `stream` into `log` until it ends. Written with `FsFile.write` because, measured with
 * Deno 2.9.6 here, chunks written through `FsFile.writable` (e.g. by `pipeTo`) never reached
 * the file.
 */
async function drainInto(stream: ReadableStream<Uint8Array>, log: Deno.FsFile): Promise<void> {
  try {
    for await (const chunk of stream) {
      for (let written = 0; written < chunk.length;) {
        written += await log.write(chunk.subarray(written));
      }
    }
  } catch { /* the log could not be written: the member's output is lost, not its work */ }
}

function memberArgs(
  member: { name: string; clientUrl: string; peerUrl: string; dataDir: string },
  cluster: { initialCluster: string; token: string },
): string[] {
  return [
    ...["--name", member.name, "--data-dir", member.dataDir],
    ...["--listen-client-urls", member.clientUrl, "--advertise-client-urls", member.clientUrl],
    ...["--listen-peer-urls", member.peerUrl, "--initial-advertise-peer-urls", member.peerUrl],
    ...["--initial-cluster", cluster.initialCluster, "--initial-cluster-state", "new"],
    ...["--initial-cluster-token", cluster.token, "--logger", "zap", "--log-outputs", "stderr"],
  ];
}

/** Starts `count` members under `root`, each appended to `spawned` as soon as it runs. */
async function spawnMembers(root: string, count: number, spawned: Spawned[]): Promise<void> {
  const planned = Array.from({ length: count }, (_, i) => ({
    name: `m${i + 1}`,
    clientUrl: `http://127.0.0.1:${freeLoopbackPort()}`,
    peerUrl: `http://127.0.0.1:${freeLoopbackPort()}`,
    dataDir: `${root}/m${i + 1}`,
  }));
  const initialCluster = planned.map((m) => `${m.name}=${m.peerUrl}`).join(",");
  const token = `basalt-bench-${crypto.randomUUID()}`;
  const launcher = dieWithParent();
  for (const plan of planned) {
    const log = await Deno.open(`${plan.dataDir}.log`, { append: true, create: true });
    const args = [...launcher, ETCD_COMMAND, ...memberArgs(plan, { initialCluster, token })];
    const child = new Deno.Command(args[0]!, {
      args: args.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // etcd logs to stderr only (`--log-outputs stderr`). The pipe must always be drained: a
    // member whose log pipe fills blocks in its logger and stops serving (seen here).
    const drained = drainInto(child.stderr, log);
    const entry: Spawned = {
      member: {
        name: plan.name,
        clientAddress: plan.clientUrl.slice("http://".length),
        dataDir: plan.dataDir,
        pid: child.pid,
      },
      child,
      log,
      drained,
      exited: false,
    };
    child.status.then(() => {
      entry.exited = true;
    });
    spawned.push(entry);
  }
}

/** The member's /metrics text, or null if it does not answer. */
async function metricsOf(member: EtcdMember): Promise<string | null> {
  try {
    const response = await fetch(`http://${member.clientAddress}/metrics`, {
      signal: AbortSignal.timeout(METRICS_TIMEOUT_MS),
    });
    return response.ok ? await response.text() : (await response.body?.cancel(), null);
  } catch {
    return null;
  }
}

/** Which members report a leader, and which report being it. */
async function leadership(members: readonly EtcdMember[]) {
  const texts = await Promise.all(members.map(metricsOf));
  return {
    withLeader: texts.filter((t) => t !== null && /^etcd_server_has_leader 1$/m.test(t)).length,
    leaders: texts.flatMap((t, i) => t !== null && /^etcd_server_is_leader 1$/m.test(t) ? [i] : []),
  };
}

function logTail(member: EtcdMember): string {
  try {
    const text = Deno.readTextFileSync(`${member.dataDir}.log`);
    return text.slice(-LOG_TAIL_BYTES);
  } catch {
    return "(no log)";
  }
}

async function waitReady(spawned: readonly Spawned[]): Promise<void> {
  const members = spawned.map((s) => s.member);
  const deadline = Date.now() + ETCD_START_TIMEOUT_MS;
  let seen = "no answer";
  for (;;) {
    const dead = spawned.find((s) => s.exited);
    if (dead !== undefined) {
      throw new Error(
        `etcd member ${dead.member.name} exited while starting; its log ends:\n` +
          logTail(dead.member),
      );
    }
    const state = await leadership(members);
    seen = `${state.withLeader} of ${members.length} members see a leader, ` +
      `${state.leaders.length} claim it`;
    if (state.withLeader === members.length && state.leaders.length === 1) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `waited ${ETCD_START_TIMEOUT_MS} ms for ${members.length} etcd members to agree on a ` +
          `leader; saw ${seen}; ${members[0]!.name}'s log ends:\n${logTail(members[0]!)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, ETCD_POLL_INTERVAL_MS));
  }
}

async function stopMember(spawned: Spawned): Promise<void> {
  const kill = (signal: Deno.Signal) => {
    try {
      spawned.child.kill(signal);
    } catch { /* already exited */ }
  };
  kill("SIGTERM");
  const timer = setTimeout(() => kill("SIGKILL"), ETCD_STOP_TIMEOUT_MS);
  await spawned.child.status;
  clearTimeout(timer);
  await spawned.drained;
  spawned.log.close();
}

/** Starts a fresh `members`-member etcd cluster and waits for it to elect a leader. */
export async function startEtcdCluster(options: { members: number }): Promise<EtcdCluster> {
  if (
    !Number.isInteger(options.members) || options.members < 1 ||
    options.members > ETCD_MAX_MEMBERS
  ) {
    throw new RangeError(`etcd cluster: members must be an integer in 1..${ETCD_MAX_MEMBERS}`);
  }
  const root = await Deno.makeTempDir({ prefix: "basalt_bench_etcd_" });
  const spawned: Spawned[] = [];
  let stopped = false;
  // SIGINT (Ctrl+C) or SIGTERM would end this process without the finally blocks: kill the
  // members and remove the root first.
  const onSignal = () => {
    for (const s of spawned) {
      try {
        s.child.kill("SIGKILL");
      } catch { /* already exited */ }
    }
    Deno.removeSync(root, { recursive: true });
    Deno.exit(130);
  };
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(spawned.map(stopMember));
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
    await Deno.remove(root, { recursive: true });
  };
  try {
    await spawnMembers(root, options.members, spawned);
    await waitReady(spawned);
  } catch (error) {
    await stop();
    throw error;
  }
  const members = spawned.map((s) => s.member);
  return {
    root,
    members,
    leader: async () => {
      const { leaders } = await leadership(members);
      if (leaders.length !== 1) {
        throw new Error(`etcd: ${leaders.length} members claim to lead (want exactly one)`);
      }
      return leaders[0]!;
    },
    stop,
  };
}
