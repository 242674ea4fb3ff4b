/**
 * Reading Prometheus text exposition (format 0.0.4): samples with labels, and quantile
 * estimates from cumulative histogram buckets as Prometheus's `histogram_quantile` makes them
 * (linear interpolation inside the bucket holding the rank). Pure.
 */

/** One sample line: `name{label="value",…} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A cumulative histogram bucket: `count` observations were <= `le`. */
export interface Bucket {
  le: number;
  count: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** Parses Prometheus text; comment and blank lines are skipped, a malformed line throws. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    try {
      samples.push(parseLine(line));
    } catch (error) {
      throw new Error(`metrics line ${index + 1}: ${(error as Error).message}: ${line}`);
    }
  });
  return samples;
}

function parseLine(line: string): Sample {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) throw new Error("no metric name");
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    const end = parseLabels(rest, labels);
    rest = rest.slice(end);
  }
  const valueText = rest.trim().split(/\s+/)[0] ?? "";
  return { name, labels, value: parseValue(valueText) };
}

/** Fills `labels` from `{a="x",b="y"}` at the start of `text`; returns the index after `}`. */
function parseLabels(text: string, labels: Record<string, string>): number {
  let i = 1;
  for (;;) {
    while (text[i] === " " || text[i] === ",") i++;
    if (text[i] === "}") return i + 1;
    const name = NAME.exec(text.slice(i))?.[0];
    if (name === undefined || text[i + name.length] !== "=" || text[i + name.length + 1] !== '"') {
      throw new Error("malformed labels");
    }
    i += name.length + 2;
    let value = "";
    while (text[i] !== '"') {
      if (i >= text.length) throw new Error("unterminated label value");
      if (text[i] === "\\") {
        const next = text[++i];
        value += next === "n" ? "\n" : next ?? "";
      } else value += text[i];
      i++;
    }
    labels[name] = value;
    i++;
  }
}

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const value = Number(text);
  if (text === "" || Number.isNaN(value)) throw new Error(`bad value "${text}"`);
  return value;
}

/**
 * The `q`-quantile (0..1) of a histogram given its cumulative buckets (any order; the +Inf
 * bucket holds the total). Null without observations. A rank in the +Inf bucket yields the
 * largest finite bound, as Prometheus does.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  if (q < 0 || q > 1) throw new RangeError(`quantile ${q} is outside [0, 1]`);
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted[sorted.length - 1]?.count ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let previousLe = 0;
  let previousCount = 0;
  for (const bucket of sorted) {
    if (bucket.count >= rank && bucket.count > previousCount) {
      if (bucket.le === Infinity) return previousLe;
      const fraction = (rank - previousCount) / (bucket.count - previousCount);
      return previousLe + (bucket.le - previousLe) * fraction;
    }
    previousLe = bucket.le;
    previousCount = bucket.count;
  }
  return previousLe;
}
