/**
 * What the server benchmark reads about processes from Linux's /proc: a child found by an
 * argument of its command line, its CPU time and its resident memory. Elsewhere every reader
 * returns null or NaN and the benchmark prints "n/a".
 */

/** CLK_TCK on Linux: /proc/<pid>/stat counts CPU time in 1/100 s. */
const TICKS_PER_SECOND = 100;

/** The pid of a process whose command line has `argument` as one argument, or null. */
export function findProcessByArgument(argument: string): number | null {
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return null;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (args.includes(argument)) return Number(entry.name);
    } catch { /* the process ended meanwhile */ }
  }
  return null;
}

/** User + system CPU seconds process `pid` has used, or NaN. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** VmRSS of process `pid`, bytes, or NaN. */
export function vmRssBytes(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = /VmRSS:\s+(\d+) kB/.exec(status);
    return kb ? Number(kb[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}
