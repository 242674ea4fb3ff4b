/**
 * Request metrics of one server, rendered in Prometheus text format by the status server:
 * per-RPC counts by outcome, per-RPC latency histograms, and requests in flight.
 */

/** Upper bounds of the latency histogram buckets, in seconds. */
const LATENCY_BUCKETS_SECONDS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** How a request ended. */
export type Outcome = "ok" | "region_error" | "error" | "invalid_argument" | "internal";

class Histogram {
  readonly counts = new Array<number>(LATENCY_BUCKETS_SECONDS.length).fill(0);
  count = 0;
  sumSeconds = 0;

  observe(seconds: number): void {
    this.count++;
    this.sumSeconds += seconds;
    for (let i = 0; i < LATENCY_BUCKETS_SECONDS.length; i++) {
      if (seconds <= LATENCY_BUCKETS_SECONDS[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

/** Counts by outcome and latency of one RPC. */
class RpcStats {
  readonly outcomes = new Map<Outcome, number>();
  readonly latency = new Histogram();
}

/** Counters and histograms of a server's requests. The label sets are bounded by RPC names. */
export class RequestMetrics {
  readonly #rpcs = new Map<string, RpcStats>();
  #inFlight = 0;

  /** Marks the start of a request; call the returned function when it ends. */
  begin(rpc: string, startMs: number): (outcome: Outcome, endMs: number) => void {
    this.started(1);
    let done = false;
    return (outcome, endMs) => {
      if (done) throw new Error(`request ${rpc} ended twice`);
      done = true;
      this.ended(rpc, outcome, (endMs - startMs) / 1000);
    };
  }

  /**
   * Marks `count` requests started; each must be `ended` once. (BatchCommands sub-requests:
   * no closure per sub-request.)
   */
  started(count: number): void {
    this.#inFlight += count;
  }

  /** Records the end of one request of `rpc` that took `seconds`. */
  ended(rpc: string, outcome: Outcome, seconds: number): void {
    if (this.#inFlight <= 0) throw new Error(`request ${rpc} ended but none was in flight`);
    this.#inFlight--;
    let stats = this.#rpcs.get(rpc);
    if (stats === undefined) this.#rpcs.set(rpc, stats = new RpcStats());
    stats.outcomes.set(outcome, (stats.outcomes.get(outcome) ?? 0) + 1);
    stats.latency.observe(seconds);
  }

  /** Requests begun and not yet ended. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Prometheus text exposition of these metrics. */
  render(): string {
    const lines = [
      "# HELP basalt_grpc_requests_total Requests handled, by RPC and outcome.",
      "# TYPE basalt_grpc_requests_total counter",
    ];
    for (const [rpc, stats] of this.#rpcs) {
      for (const [outcome, count] of stats.outcomes) {
        lines.push(`basalt_grpc_requests_total{rpc="${rpc}",outcome="${outcome}"} ${count}`);
      }
    }
    lines.push(
      "# HELP basalt_grpc_request_duration_seconds Request latency, by RPC.",
      "# TYPE basalt_grpc_request_duration_seconds histogram",
    );
    for (const [rpc, { latency: histogram }] of this.#rpcs) {
      let cumulative = 0;
      LATENCY_BUCKETS_SECONDS.forEach((bound, i) => {
        cumulative += histogram.counts[i]!;
        lines.push(
          `basalt_grpc_request_duration_seconds_bucket{rpc="${rpc}",le="${bound}"} ${cumulative}`,
        );
      });
      lines.push(
        `basalt_grpc_request_duration_seconds_bucket{rpc="${rpc}",le="+Inf"} ${histogram.count}`,
        `basalt_grpc_request_duration_seconds_sum{rpc="${rpc}"} ${histogram.sumSeconds}`,
        `basalt_grpc_request_duration_seconds_count{rpc="${rpc}"} ${histogram.count}`,
      );
    }
    lines.push(
      "# HELP basalt_grpc_requests_in_flight Requests being handled now.",
      "# TYPE basalt_grpc_requests_in_flight gauge",
      `basalt_grpc_requests_in_flight ${this.#inFlight}`,
    );
    return lines.join("\n") + "\n";
  }

  /** Resolves when no request is in flight, or after `timeoutMs`; returns whether drained. */
  async drained(timeoutMs: number, sleep: (ms: number) => Promise<void>): Promise<boolean> {
    const stepMs = 10;
    for (let waitedMs = 0; waitedMs < timeoutMs; waitedMs += stepMs) {
      if (this.#inFlight === 0) return true;
      await sleep(stepMs);
    }
    return this.#inFlight === 0;
  }
}

/**
 * The outcome recorded for a response: its `region_error`, else its `error` (a string for raw
 * commands, a `KeyError` for transactional ones) or a non-empty `errors` list.
 */
export function outcomeOf(response: object): Outcome {
  const fields = response as { regionError?: unknown; error?: unknown; errors?: unknown };
  if (fields.regionError != null) return "region_error";
  if (typeof fields.error === "string" ? fields.error !== "" : fields.error != null) return "error";
  if (Array.isArray(fields.errors) && fields.errors.length > 0) return "error";
  return "ok";
}
