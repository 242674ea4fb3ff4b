/**
 * `deno task cluster`: a playground cluster on this machine — one PD and N stores on loopback,
 * each started through its own least-privilege launcher (`scripts/pd.ts`, `scripts/serve.ts`),
 * data and logs under one directory (default `./artifacts/cluster/`). It prints the addresses
 * and the commands to use it; Ctrl+C (or SIGTERM) stops the stores, then PD; started again on the
 * same directory, it reuses the data.
 *
 *   deno task cluster [-- --stores 3 --dir ./artifacts/cluster --pd-port 2379
 *                       --store-port 20161 --status-port 20181]
 *
 * Store i (from 0) listens on `store-port + i` (status `status-port + i`); PD on `pd-port`
 * (status `pd-port + 2`). Every wait is bounded; a child that fails to start stops the others.
 * This launcher only creates the directory and starts the launchers; each process gets the
 * narrow permissions its own launcher works out.
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
}

function usage(): string {
  return [
    "deno task cluster [-- options]: 1 PD + N stores on loopback, data and logs in one directory",
    "  --stores N        stores to start (1–9, default 3)",
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
  return { name, process, exited };
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
  let stores: number, pdPort: number, storePort: number, statusPort: number;
  try {
    stores = values.stores === undefined ? 3 : Number(values.stores);
    if (!Number.isInteger(stores) || stores < 1 || stores > MAX_STORES) {
      throw new Error(`--stores: 1 to ${MAX_STORES}, not ${values.stores}`);
    }
    pdPort = port("pd-port", values["pd-port"], 2379);
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
  const pdAddr = `127.0.0.1:${pdPort}`;
  const children: Child[] = [];
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    let worst = 0;
    // Stores first (they heartbeat to PD), then PD.
    for (const child of [...children].reverse()) worst = Math.max(worst, await stop(child));
    return worst;
  };
  const signalled = new Promise<string>((resolve) => {
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
  try {
    children.push(
      await start("pd", "pd.ts", [
        "--name",
        "pd1",
        "--client-urls",
        pdAddr,
        "--status-addr",
        `127.0.0.1:${pdPort + 2}`,
        "--data-dir",
        `${dir}/pd`,
        "--log-file",
        `${dir}/pd.log`,
      ], /basalt-pd ready/),
    );
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
      `  data and logs: ${dir}/ (pd.log, storeN.log)`,
      `  try: deno task ctl -- --pd ${pdAddr} raw put hello world`,
      `       deno task ctl -- --pd ${pdAddr} raw get hello`,
      `       deno task ctl -- --pd ${pdAddr} region list     (peers and leader)`,
      `       deno task ctl -- --pd ${pdAddr} store list`,
      "  Ctrl+C stops everything; started again on the same directory, the data is kept.",
    ].join("\n"),
  );
  // A child that dies on its own ends the playground too (its log says why).
  const died = Promise.race(
    children.map((child) => child.exited.then((code) => `${child.name} exited with ${code}`)),
  );
  const why = await Promise.race([signalled, died]);
  if (!stopping) console.log(`basalt-cluster: stopping (${why})`);
  const worst = await stopAll();
  console.log("basalt-cluster: stopped");
  return why.startsWith("SIG") ? (worst === 0 ? 0 : 1) : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
