/**
 * `deno task cluster`: a playground cluster on this machine — one PD and N stores on loopback,
 * each started through its own least-privilege launcher (`scripts/pd.ts`, `scripts/serve.ts`),
 * data and logs under one directory (default `./artifacts/cluster/`). It prints the addresses
 * and the commands to use it; Ctrl+C (or SIGTERM) stops the stores, then PD; started again on the
 * same directory, it reuses the data.
 *
 *   deno task cluster [-- --stores 3 --pd 1 --dir ./artifacts/cluster --pd-port 2379
 *                       --store-port 20161 --status-port 20181]
 *
 * Store i (from 0) listens on `store-port + i` (status `status-port + i`). PD member j (from 0)
 * listens on `pd-port + 10j` for clients, `pd-port + 10j + 1` for its peers and `+ 2` for status:
 * with `--pd 3` the three members replicate PD's state over Raft and the stores know all three.
 * PD is given `max-store-down-time` (default 1m here, PD's own default is 30m) in
 * `<dir>/pd.toml`, so that a killed store's replicas are seen re-created within the tour's
 * minutes. Every wait is bounded; a child that fails to start stops the others; a child that
 * dies later (a store killed on purpose) is reported and the others go on. This launcher only
 * writes the directory and `pd.toml` and starts the launchers; each process gets the narrow
 * permissions its own launcher works out.
 */
import { parseArgs } from "node:util";

/** Most stores the playground starts. */
const MAX_STORES = 9;
/** Longest a process may take to print its ready line. */
const READY_TIMEOUT_MS = 60_000;
/** Longest a process may take to stop after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 20_000;

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

interface Child {
  name: string;
  process: Deno.ChildProcess;
  /** Resolves when the process has exited (with its code). */
  exited: Promise<number>;
  /** Set once it has exited. */
  done: boolean;
}

function usage(): string {
  return [
    "deno task cluster [-- options]: 1 PD + N stores on loopback, data and logs in one directory",
    "  --stores N        stores to start (1–9, default 3)",
    "  --pd N            PD members: 1 (default) or 3 (replicated; member j on pd-port + 10j)",
    "  --max-store-down-time D  after D without a heartbeat a store is Down and PD re-creates",
    "                    its replicas elsewhere (default 1m here, so that repair is seen soon;",
    "                    PD's own default is 30m)",
    "  --dir DIR         data and logs (default ./artifacts/cluster); reused when started again",
    "  --pd-port P       PD's client port (default 2379; its status port is P + 2)",
    "  --store-port P    store i's gRPC port is P + i (default 20161)",
    "  --status-port P   store i's status port is P + i (default 20181)",
  ].join("\n");
}

function port(name: string, value: string | undefined, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65_000) {
    throw new Error(`--${name}: not a port: ${value}`);
  }
  return n;
}

/** Starts `script` with `args` through its launcher; resolves once it printed `ready`. */
async function start(
  name: string,
  script: string,
  args: string[],
  ready: RegExp,
): Promise<Child> {
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      "--allow-env=BASALT_ROCKSDB_LIB",
      "--allow-run",
      `${ROOT}/scripts/${script}`,
      ...args,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const exited = process.status.then((status) => status.code);
  const child: Child = { name, process, exited, done: false };
  exited.then(() => child.done = true);
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${name} printed no ready line within ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
  });
  try {
    while (!ready.test(seen)) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error(`${name} exited before it was ready:\n${seen}`);
      seen += value;
    }
  } catch (error) {
    try {
      process.kill("SIGKILL");
    } catch { /* exited */ }
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  // Keep draining its standard output so it never blocks on a full pipe.
  (async () => {
    for (;;) {
      const { done } = await reader.read().catch(() => ({ done: true }));
      if (done) return;
    }
  })();
  return child;
}

/** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; resolves with the exit code. */
async function stop(child: Child): Promise<number> {
  try {
    child.process.kill("SIGTERM");
  } catch { /* exited already */ }
  const timer = setTimeout(() => {
    try {
      child.process.kill("SIGKILL");
    } catch { /* exited */ }
  }, STOP_TIMEOUT_MS);
  const code = await child.exited;
  clearTimeout(timer);
  return code;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv.filter((arg) => arg !== "--"),
    options: {
      "stores": { type: "string" },
      "pd": { type: "string" },
      "max-store-down-time": { type: "string" },
      "dir": { type: "string" },
      "pd-port": { type: "string" },
      "store-port": { type: "string" },
      "status-port": { type: "string" },
      "help": { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(usage());
    return 0;
  }
  let stores: number, members: number, pdPort: number, storePort: number, statusPort: number;
  try {
    stores = values.stores === undefined ? 3 : Number(values.stores);
    if (!Number.isInteger(stores) || stores < 1 || stores > MAX_STORES) {
      throw new Error(`--stores: 1 to ${MAX_STORES}, not ${values.stores}`);
    }
    members = values.pd === undefined ? 1 : Number(values.pd);
    if (members !== 1 && members !== 3) throw new Error(`--pd: 1 or 3, not ${values.pd}`);
    pdPort = port("pd-port", values["pd-port"], 2379);
    port("pd-port", String(pdPort + 10 * (members - 1) + 2), 0);
    storePort = port("store-port", values["store-port"], 20161);
    statusPort = port("status-port", values["status-port"], 20181);
  } catch (error) {
    console.error(`basalt-cluster: ${(error as Error).message}\n(see --help)`);
    return 2;
  }
  const dir = (values.dir ?? "./artifacts/cluster").replace(/\/$/, "");
  // The one thing this launcher writes: the directory the processes put their data and logs in
  // (each process runs with its own launcher's narrow permissions).
  Deno.mkdirSync(dir, { recursive: true });
  const downTime = values["max-store-down-time"] ?? "1m";
  if (!/^[0-9]+(ms|s|m|h)$/.test(downTime)) {
    console.error(
      `basalt-cluster: --max-store-down-time: a duration like 30s or 1m, not ${downTime}`,
    );
    return 2;
  }
  // The playground's PD settings, in PD's configuration file format.
  const pdConfig = `${dir}/pd.toml`;
  Deno.writeTextFileSync(pdConfig, `[schedule]\nmax-store-down-time = "${downTime}"\n`);
  const pdAddrs = Array.from({ length: members }, (_, j) => `127.0.0.1:${pdPort + 10 * j}`);
  const pdAddr = pdAddrs.join(",");
  const initialCluster = pdAddrs
    .map((_, j) => `pd${j + 1}=http://127.0.0.1:${pdPort + 10 * j + 1}`)
    .join(",");
  const children: Child[] = [];
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    let worst = 0;
    // Stores first (they heartbeat to PD), then PD.
    // A child that had exited before (killed on purpose) does not count against the stop.
    for (const child of [...children].reverse()) {
      if (child.done) continue;
      worst = Math.max(worst, await stop(child));
    }
    return worst;
  };
  const signalled = new Promise<string>((resolve) => {
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
  try {
    for (let j = 0; j < members; j++) {
      const name = members === 1 ? "pd" : `pd${j + 1}`;
      const client = pdPort + 10 * j;
      const replicated = members === 1 ? [] : [
        "--peer-urls",
        `http://127.0.0.1:${client + 1}`,
        "--initial-cluster",
        initialCluster,
      ];
      children.push(
        await start(name, "pd.ts", [
          "--name",
          `pd${j + 1}`,
          "--client-urls",
          `127.0.0.1:${client}`,
          ...replicated,
          "--status-addr",
          `127.0.0.1:${client + 2}`,
          "--config",
          pdConfig,
          "--data-dir",
          `${dir}/${name}`,
          "--log-file",
          `${dir}/${name}.log`,
        ], /basalt-pd ready/),
      );
    }
    for (let i = 0; i < stores; i++) {
      const addr = `127.0.0.1:${storePort + i}`;
      children.push(
        await start(`store ${i + 1}`, "serve.ts", [
          "--pd",
          pdAddr,
          "--addr",
          addr,
          "--advertise-addr",
          addr,
          "--status-addr",
          `127.0.0.1:${statusPort + i}`,
          "--data-dir",
          `${dir}/store${i + 1}`,
          "--log-file",
          `${dir}/store${i + 1}.log`,
        ], /basalt ready/),
      );
    }
  } catch (error) {
    console.error(`basalt-cluster: ${(error as Error).message}`);
    await stopAll();
    return 1;
  }
  console.log(
    [
      `basalt-cluster ready: pd ${pdAddr}, ${stores} stores at ` +
      Array.from({ length: stores }, (_, i) => `127.0.0.1:${storePort + i}`).join(", "),
      `  data and logs: ${dir}/ (${members === 1 ? "pd.log" : "pdN.log"}, storeN.log)`,
      `  try: deno task ctl -- --pd ${pdAddr} raw put hello world`,
      `       deno task ctl -- --pd ${pdAddr} raw get hello`,
      `       deno task ctl -- --pd ${pdAddr} region list     (peers and leader)`,
      `       deno task ctl -- --pd ${pdAddr} store list`,
      "  Ctrl+C stops everything; started again on the same directory, the data is kept.",
    ].join("\n"),
  );
  // A child that dies on its own (a store killed in the tour) is reported; the others go on,
  // and the playground ends on a signal, or once every child has exited.
  for (const child of children) {
    child.exited.then((code) => {
      if (!stopping) console.log(`basalt-cluster: ${child.name} exited with ${code} (see its log)`);
    });
  }
  const allExited = Promise.all(children.map((child) => child.exited)).then(() =>
    "every process exited"
  );
  const why = await Promise.race([signalled, allExited]);
  if (!stopping) console.log(`basalt-cluster: stopping (${why})`);
  const worst = await stopAll();
  console.log("basalt-cluster: stopped");
  return why.startsWith("SIG") ? (worst === 0 ? 0 : 1) : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
