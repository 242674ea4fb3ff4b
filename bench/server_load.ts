/**
 * A closed-loop load driver: `inFlight` workers each send one request, await it, and send the
 * next, until `ops` requests are done or `maxMs` has passed. Every latency is recorded
 * (send → answer, in ms) so p50 and p99 are exact, not estimated.
 *
 * Keys are 16 bytes, `bk` + 14 decimal digits of an index; indexes are visited in a scattered
 * order (a multiplicative permutation of [0, keySpace)) so writes are random-order, as
 * db_bench's fillrandom and redis-benchmark's `-r` are.
 */

/** Throughput and latency of one measured cell. */
export interface LoadResult {
  ops: number;
  seconds: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests answered with an error (a region error, an error string, or a rejection). */
  errors: number;
  /** The first error seen, for the report. */
  firstError?: string;
}

/** Bytes of key `index`: 16 bytes, `bk` and 14 zero-padded digits. */
export function benchKey(index: number): Uint8Array {
  return new TextEncoder().encode(`bk${String(index).padStart(14, "0")}`);
}

/** The `i`-th index of a fixed scattered walk over [0, keySpace). */
export function scatteredIndex(i: number, keySpace: number): number {
  // 2654435761 (Knuth's multiplicative hash) is odd and prime, so coprime with any keySpace
  // that it does not divide; for those it is a permutation.
  return Number((BigInt(i) * 2654435761n) % BigInt(keySpace));
}

/** The `q`-quantile (0..1) of sorted `values`, nearest rank. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/**
 * Runs `operation(i)` for i = 0, 1, … with `inFlight` outstanding at a time. `operation`
 * resolves to null on success or an error description. The loop also ends once `until`, if
 * given, returns true (checked before each request).
 */
export async function runClosedLoop(
  operation: (i: number) => Promise<string | null>,
  options: { ops: number; inFlight: number; maxMs: number; until?: () => boolean },
): Promise<LoadResult> {
  const latencies = new Float64Array(options.ops);
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  const startMs = performance.now();
  const stopAtMs = startMs + options.maxMs;
  const worker = async () => {
    while (next < options.ops && performance.now() < stopAtMs && !options.until?.()) {
      const i = next++;
      const sentMs = performance.now();
      let error: string | null;
      try {
        error = await operation(i);
      } catch (thrown) {
        error = String(thrown);
      }
      latencies[done++] = performance.now() - sentMs;
      if (error !== null) {
        errors++;
        firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  const seconds = (performance.now() - startMs) / 1000;
  const measured = latencies.subarray(0, done).sort();
  return {
    ops: done,
    seconds,
    opsPerSecond: done / seconds,
    p50Ms: quantile(measured, 0.5),
    p99Ms: quantile(measured, 0.99),
    errors,
    firstError,
  };
}
