/**
 * The PD process's counters for `/metrics` (Prometheus text): requests per `pdpb.PD` method and
 * outcome, timestamps handed out, region heartbeats by what became of them, and, read at
 * render time, the stores, regions and running operators the core knows.
 *
 * Bounded: methods are the service's fixed set and outcomes a fixed list, so the maps never
 * grow with input.
 *
 * @module
 */
import type { MemberStatus } from "../pd_member.ts";
import type { PlacementDriver } from "../placement_driver.ts";

/** What became of a request. */
export type PdOutcome =
  | "ok"
  | "error_header"
  | "invalid_argument"
  | "cluster_mismatch"
  | "failed"
  | "not_leader";

/** What became of a region heartbeat. */
export type HeartbeatOutcome = "kept" | "stale" | "refused" | "operator_sent";

/** Counters of the PD service. */
export class PdMetrics {
  readonly #requests = new Map<string, number>();
  readonly #heartbeats = new Map<HeartbeatOutcome, number>();
  #timestamps = 0n;
  #scheduleRounds = 0;
  #operatorsAdded = 0;

  /** One request of `method` ended with `outcome`. */
  request(method: string, outcome: PdOutcome): void {
    const key = `method="${method}",outcome="${outcome}"`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  /** `count` timestamps were handed out. */
  timestamps(count: number): void {
    this.#timestamps += BigInt(count);
  }

  heartbeat(outcome: HeartbeatOutcome): void {
    this.#heartbeats.set(outcome, (this.#heartbeats.get(outcome) ?? 0) + 1);
  }

  scheduleRound(operatorsAdded: number): void {
    this.#scheduleRounds++;
    this.#operatorsAdded += operatorsAdded;
  }

  /** Requests of `method` so far, whatever their outcome (tests). */
  requestsOf(method: string): number {
    let total = 0;
    for (const [key, value] of this.#requests) {
      if (key.startsWith(`method="${method}",`)) total += value;
    }
    return total;
  }

  /**
   * Prometheus text of the counters and of the core's current sizes (`driver`: `null` on a
   * replicated member that does not serve, which has no core); `member`, a replicated
   * member's Raft standing.
   */
  render(driver: PlacementDriver | null, member?: MemberStatus): string {
    const lines: string[] = ["# TYPE basalt_pd_requests_total counter"];
    for (const [labels, value] of [...this.#requests].sort()) {
      lines.push(`basalt_pd_requests_total{${labels}} ${value}`);
    }
    lines.push("# TYPE basalt_pd_tso_timestamps_total counter");
    lines.push(`basalt_pd_tso_timestamps_total ${this.#timestamps}`);
    lines.push("# TYPE basalt_pd_region_heartbeats_total counter");
    for (const [outcome, value] of [...this.#heartbeats].sort()) {
      lines.push(`basalt_pd_region_heartbeats_total{outcome="${outcome}"} ${value}`);
    }
    lines.push("# TYPE basalt_pd_schedule_rounds_total counter");
    lines.push(`basalt_pd_schedule_rounds_total ${this.#scheduleRounds}`);
    lines.push("# TYPE basalt_pd_operators_added_total counter");
    lines.push(`basalt_pd_operators_added_total ${this.#operatorsAdded}`);
    if (member !== undefined) {
      lines.push(
        "# TYPE basalt_pd_member_serving gauge",
        `basalt_pd_member_serving ${member.serving ? 1 : 0}`,
        "# TYPE basalt_pd_member_term gauge",
        `basalt_pd_member_term ${member.term}`,
        "# TYPE basalt_pd_member_applied_index gauge",
        `basalt_pd_member_applied_index ${member.applied}`,
        "# TYPE basalt_pd_member_last_index gauge",
        `basalt_pd_member_last_index ${member.lastIndex}`,
        "# TYPE basalt_pd_member_buffered_writes gauge",
        `basalt_pd_member_buffered_writes ${member.bufferedWrites}`,
      );
    }
    if (driver === null) return lines.join("\n") + "\n";
    const stores = driver.cluster.stores();
    lines.push("# TYPE basalt_pd_stores gauge");
    for (const state of ["Up", "Offline", "Tombstone"] as const) {
      const count = stores.filter((store) => store.meta.state === state).length;
      lines.push(`basalt_pd_stores{state="${state}"} ${count}`);
    }
    lines.push(
      "# TYPE basalt_pd_regions gauge",
      `basalt_pd_regions ${driver.cluster.regions.size}`,
    );
    lines.push(
      "# TYPE basalt_pd_operators_running gauge",
      `basalt_pd_operators_running ${driver.operators().length}`,
    );
    lines.push(
      "# TYPE basalt_pd_bootstrapped gauge",
      `basalt_pd_bootstrapped ${driver.isBootstrapped() ? 1 : 0}`,
    );
    return lines.join("\n") + "\n";
  }
}
