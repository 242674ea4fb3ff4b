/**
 * Shared benchmark helpers: medians over repeats, ratio tables, peak RSS of child processes.
 * Every benchmark prints ratios against a peer measured in the same run, because absolute
 * figures on these shared 2-core machines wander by up to 2×.
 */

/** The median of `values` (the lower middle for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** One row of a ratio table. */
export interface RatioRow {
  name: string;
  ours: number;
  peer: number;
  /** The target ratio ours ÷ peer, if any. */
  target?: number;
  unit?: string;
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value >= 100) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(2);
}

/** Prints a table of ours vs peer with the ratio and whether the target was met. */
export function printRatioTable(
  title: string,
  columns: { ours: string; peer: string },
  rows: readonly RatioRow[],
): void {
  const header = ["workload", columns.ours, columns.peer, "ratio", "target", "met"];
  const lines = rows.map((row) => {
    const ratio = row.ours / row.peer;
    const met = row.target === undefined ? "" : ratio >= row.target ? "yes" : "NO";
    return [
      row.name,
      `${formatNumber(row.ours)}${row.unit ? ` ${row.unit}` : ""}`,
      `${formatNumber(row.peer)}${row.unit ? ` ${row.unit}` : ""}`,
      Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "n/a",
      row.target === undefined ? "" : `≥${row.target}×`,
      met,
    ];
  });
  printTable(title, header, lines);
}

/** Prints a plain aligned table. */
export function printTable(title: string, header: string[], lines: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const format = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log(`\n## ${title}`);
  console.log(format(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const line of lines) console.log(format(line));
}

/** Runs a command to completion, returning its stdout and its peak RSS (via GNU time). */
export async function runMeasured(
  command: string,
  args: string[],
): Promise<{ stdout: string; peakRssBytes: number }> {
  const hasTime = (() => {
    try {
      return Deno.statSync("/usr/bin/time").isFile;
    } catch {
      return false;
    }
  })();
  const full = hasTime ? ["/usr/bin/time", "-f", "PEAK_RSS_KB=%M", command, ...args] : [
    command,
    ...args,
  ];
  const output = await new Deno.Command(full[0]!, { args: full.slice(1), stderr: "piped" })
    .output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`${command} failed: ${stderr.slice(-2000)}`);
  const rss = /PEAK_RSS_KB=(\d+)/.exec(stderr);
  return { stdout, peakRssBytes: rss ? Number(rss[1]) * 1024 : NaN };
}

/** `value` with thousands separators and exactly `digits` decimals, or "n/a" if not finite. */
export function formatFigure(value: number, digits = 0): string {
  return Number.isFinite(value)
    ? value.toLocaleString("en-US", {
      maximumFractionDigits: digits,
      minimumFractionDigits: digits,
    })
    : "n/a";
}
