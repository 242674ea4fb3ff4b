/**
 * A placement driver of three members for the PD benchmark, started as
 * `tests/e2e/pd_ha_test.ts` starts it: three `deno task pd` processes (`tests/e2e/pd_lib.ts`'s
 * `startPd`: loopback, client and status ports 0) sharing one `--initial-cluster`, each
 * member's peer URL a port from `tests/e2e/lib.ts`'s `freeLoopbackPort`, their data
 * directories under one temporary directory.
 *
 * Promises: `startPdGroup` answers only once one member names itself leader and answers a PD
 * request (within `PD_GROUP_LEADER_WAIT_MS`), and when it fails it has stopped every member it
 * started. `stop()` stops every member (each within `lib.ts`'s stop timeout, SIGKILL after it).
 *
 * @module
 */
import { freeLoopbackPort } from "../tests/e2e/lib.ts";
import { pdServes, startPd, type TestPd } from "../tests/e2e/pd_lib.ts";

/** Members of the replicated PD the benchmark drives. */
export const PD_GROUP_MEMBERS = 3;
/** Longest wait for the members to elect a leader that serves. */
export const PD_GROUP_LEADER_WAIT_MS = 30_000;
/** Pause between two looks for the leader. */
const LEADER_POLL_MS = 100;

/** Three running PD members, the leader among them known. */
export interface PdGroup {
  /** The temporary directory holding every member's data and logs. */
  dir: string;
  leader: TestPd;
  followers: TestPd[];
  /** Stops every member (also the ones stopped already: then it does nothing). */
  stop(): Promise<void>;
}

/** The member that serves, within `PD_GROUP_LEADER_WAIT_MS`. */
async function leaderAmong(members: readonly TestPd[]): Promise<TestPd> {
  const deadline = Date.now() + PD_GROUP_LEADER_WAIT_MS;
  while (Date.now() < deadline) {
    for (const pd of members) if (await pdServes(pd)) return pd;
    await new Promise((resolve) => setTimeout(resolve, LEADER_POLL_MS));
  }
  throw new Error(
    `no PD member served within ${PD_GROUP_LEADER_WAIT_MS} ms (logs: ${
      members.map((pd) => pd.logPath).join(", ")
    })`,
  );
}

/** Stops every member, whatever state it is in. */
async function stopAll(members: readonly TestPd[]): Promise<void> {
  await Promise.all(members.map(async (pd) => {
    try {
      await pd.stop();
    } catch { /* it had exited */ }
  }));
}

/** Starts the group and waits for its leader (see the module header). */
export async function startPdGroup(): Promise<PdGroup> {
  const dir = await Deno.makeTempDir({ prefix: "basalt_pd_bench_group_" });
  const names = Array.from({ length: PD_GROUP_MEMBERS }, (_, i) => `pd${i + 1}`);
  const peerUrls = names.map(() => `http://127.0.0.1:${freeLoopbackPort()}`);
  const initialCluster = names.map((name, i) => `${name}=${peerUrls[i]}`).join(",");
  const started = await Promise.allSettled(names.map((name, i) =>
    startPd({
      dataDir: `${dir}/${name}`,
      args: ["--name", name, "--peer-urls", peerUrls[i]!, "--initial-cluster", initialCluster],
    })
  ));
  const members = started.flatMap((result) => result.status === "fulfilled" ? [result.value] : []);
  try {
    const refused = started.find((result) => result.status === "rejected");
    if (refused !== undefined) throw (refused as PromiseRejectedResult).reason;
    const leader = await leaderAmong(members);
    return {
      dir,
      leader,
      followers: members.filter((pd) => pd !== leader),
      stop: () => stopAll(members),
    };
  } catch (error) {
    await stopAll(members);
    console.error(`pd bench: kept the PD group's data and logs in ${dir}`);
    throw error;
  }
}
