/**
 * An end-to-end cluster: one PD process and N store processes (`src/server/main.ts --pd`) on
 * loopback, with every store-to-store link routed through its own `LinkProxy`, so a test can
 * cut, heal, isolate and slow links, and kill, restart, pause and resume stores.
 *
 * Layout (everything under one temporary root, `cluster.root`, printed and kept when a test
 * fails, removed when it passes):
 *   pd/, pd.log, pd.server.log                 the PD's data directory and logs
 *   storeI/, storeI.log, storeI.server.log     store I's data directory, output, structured log
 *   storeI.dial_map.json                       store I's dial map
 *
 * Invariants:
 * - Stores are numbered from 0 in the order they were added (`addStore`); the number is the
 *   harness's, not PD's store id (`storeId(i)` reads that from the store's `basalt.json`).
 * - Store I listens on, and advertises, one fixed loopback port for its whole life, so a
 *   restarted store is found where PD and its peers knew it. The store publishes its address to
 *   PD before it listens, so the port is picked before the start (`freeLoopbackPort`), below
 *   the kernel's ephemeral range: no outgoing connection takes it while the store is down.
 * - Every ordered pair (A, B) of stores has a proxy `proxy(A, B)` targeting B's address, and
 *   A's dial map (`BASALT_TEST_DIAL_MAP_FILE`, JSON `{"<B's address>": "<proxy(A, B)>"}`)
 *   names it for every other store B. The maps are complete before a new store starts and
 *   are replaced atomically (write, then rename), as the store re-reads its map at every dial.
 *   A's connection to B carries what A sends B (and B's answers on it): `cut(A, B)` cuts both
 *   A→B and B→A; `cutOneWay(A, B)` and `delay(A, B, ms)` act on A→B only.
 * - Client and PD traffic never goes through a proxy.
 * - Every process runs under `setpriv --pdeathsig KILL`: a test process that dies takes its
 *   cluster with it.
 * - Every wait is bounded: starts and stops by `lib.ts`'s timeouts, `waitFor` by its deadline;
 *   `stop()` stops everything it started even after failures.
 */
import { type ExtraGrants, freeLoopbackPort, startServer, type TestServer } from "./lib.ts";
import { LinkProxy } from "./link_proxy.ts";
import { startPd, type TestPd } from "./pd_lib.ts";

/** The most stores a cluster may have (it runs N × (N − 1) proxies). */
export const CLUSTER_MAX_STORES = 9;
/** How long `waitFor` waits by default. */
export const CLUSTER_WAIT_TIMEOUT_MS = 15_000;
/** How often `waitFor` checks. */
export const CLUSTER_POLL_INTERVAL_MS = 100;
/** The environment variable naming a store's dial-map file (read by the store's dialer). */
export const DIAL_MAP_ENV = "BASALT_TEST_DIAL_MAP_FILE";

/**
 * The command every process of a cluster runs under: `setpriv --pdeathsig KILL`, so the kernel
 * SIGKILLs it when the test process that started it dies (a crash, a runner's timeout) instead
 * of leaving it running with its ports and data directory. Without setpriv, none (and a dead
 * test process leaves its cluster behind).
 */
export function dieWithParent(): string[] {
  for (const path of ["/usr/bin/setpriv", "/bin/setpriv"]) {
    try {
      Deno.statSync(path);
      return [path, "--pdeathsig", "KILL", "--"];
    } catch { /* not there */ }
  }
  return [];
}

/**
 * Polls `check` every CLUSTER_POLL_INTERVAL_MS until it returns true; fails after `timeoutMs`
 * with `what` and the last error `check` threw, if any.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = CLUSTER_WAIT_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      if (await check()) return;
      lastError = null;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError === null ? "" : ` (last error: ${(lastError as Error).message})`;
      throw new Error(`waited ${timeoutMs} ms for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, CLUSTER_POLL_INTERVAL_MS));
  }
}

/** What `startCluster` starts. */
export interface ClusterOptions {
  /** Stores to start, one after another (default 3, at most CLUSTER_MAX_STORES). */
  stores?: number;
  /** PD members: 1, or 3 replicating over Raft (`--initial-cluster`), each on fixed ports. */
  pd?: 1 | 3;
  /** PD's TOML configuration (e.g. `[schedule] max-store-down-time`), for every member. */
  pdConfig?: string;
  /** Flags added to every store's command line, or a function of the store's number. */
  storeArgs?: string[] | ((index: number) => string[]);
  /** Variables added to every store's environment. */
  env?: Record<string, string>;
  /**
   * Route store-to-store links through `LinkProxy`s (default true). False: stores dial each
   * other directly, as in a deployment, and `proxy`, `cut`, `delay` and the like throw (the
   * cluster benchmark uses this: the proxies run in the test process and would share its CPU).
   */
  proxies?: boolean;
}

/** One store of the cluster and its state in the harness. */
interface ClusterStore {
  readonly addr: string;
  readonly dataDir: string;
  readonly dialMapPath: string;
  server: TestServer | null;
  running: boolean;
  paused: boolean;
}

/** A PD and its stores; see the module header. Build one with `startCluster`. */
export class Cluster {
  readonly #stores: ClusterStore[] = [];
  /** `from → to` link proxies, keyed `${from},${to}`. */
  readonly #proxies = new Map<string, LinkProxy>();
  #stopped = false;

  private constructor(
    readonly root: string,
    /** PD's members (one, or three replicating over Raft). */
    readonly pds: TestPd[],
    readonly options: ClusterOptions,
  ) {}

  /** The first PD member (the only one, with `pd: 1`). */
  get pd(): TestPd {
    return this.pds[0]!;
  }

  /**
   * Starts PD under a fresh root — one member on any ports, or three on fixed ports (a member
   * restarted is found where the others and the stores knew it); the caller adds stores.
   */
  static async create(options: ClusterOptions): Promise<Cluster> {
    const root = await Deno.makeTempDir({ prefix: "basalt_cluster_" });
    const started: TestPd[] = [];
    try {
      if ((options.pd ?? 1) === 1) {
        started.push(
          await startPd({
            dataDir: `${root}/pd`,
            launcher: dieWithParent(),
            config: options.pdConfig,
          }),
        );
      } else {
        const names = ["pd1", "pd2", "pd3"];
        const ports = names.map(() => [freeLoopbackPort(), freeLoopbackPort()] as const);
        const initial = names.map((name, i) => `${name}=http://127.0.0.1:${ports[i]![1]}`);
        await Promise.all(names.map(async (name, i) => {
          started[i] = await startPd({
            dataDir: `${root}/${name}`,
            launcher: dieWithParent(),
            config: options.pdConfig,
            args: [
              "--name",
              name,
              "--client-urls",
              `http://127.0.0.1:${ports[i]![0]}`,
              "--peer-urls",
              `http://127.0.0.1:${ports[i]![1]}`,
              "--initial-cluster",
              initial.join(","),
            ],
          });
        }));
      }
      return new Cluster(root, started, options);
    } catch (error) {
      await Promise.allSettled(started.map((pd) => pd.stop()));
      console.error(`e2e: kept the logs of the cluster that failed to start in ${root}`);
      throw error;
    }
  }

  /** The first PD member's client address. */
  get pdAddr(): string {
    return this.pd.clientAddr;
  }

  /** Every PD member's client address, comma-separated (what `--pd` takes). */
  get pdEndpoints(): string {
    return this.pds.map((pd) => pd.clientAddr).join(",");
  }

  /** PD members killed and not restarted (so `stop` leaves them be). */
  readonly #pdsDown = new Set<number>();

  /** SIGKILL of PD member `index`. */
  async killPd(index: number): Promise<void> {
    this.#pdsDown.add(index);
    await this.pds[index]!.kill();
  }

  /** Starts PD member `index` again on its data directory and ports. */
  async restartPd(index: number): Promise<void> {
    await this.pds[index]!.restart();
    this.#pdsDown.delete(index);
  }

  /** How many stores were added (running or not). */
  get storeCount(): number {
    return this.#stores.length;
  }

  /** Store `index`'s gRPC address: where it listens, what it advertises, what PD names. */
  storeAddr(index: number): string {
    return this.#store(index).addr;
  }

  /** Store `index`'s status address (its port changes at every start). */
  statusAddr(index: number): string {
    return this.#server(index).statusAddr;
  }

  /** Store `index`'s data directory. */
  dataDir(index: number): string {
    return this.#store(index).dataDir;
  }

  /** Store `index`'s structured log (`--log-file`). */
  logPath(index: number): string {
    return `${this.#store(index).dataDir}.server.log`;
  }

  /** The store id PD gave store `index`, from its data directory's identity file. */
  storeId(index: number): bigint {
    const identity = JSON.parse(Deno.readTextFileSync(`${this.dataDir(index)}/basalt.json`));
    return BigInt(identity.storeId);
  }

  /** Whether store `index` runs (started and neither killed nor stopped since). */
  isRunning(index: number): boolean {
    return this.#store(index).running;
  }

  /** The proxy that carries store `from`'s connections to store `to`. */
  proxy(from: number, to: number): LinkProxy {
    this.#store(from);
    this.#store(to);
    if (this.options.proxies === false) {
      throw new Error(`the cluster in ${this.root} runs without link proxies`);
    }
    const proxy = this.#proxies.get(`${from},${to}`);
    if (proxy === undefined) throw new RangeError(`no link from store ${from} to itself`);
    return proxy;
  }

  /**
   * Adds a store: picks its port, creates its links to and from every store already there,
   * rewrites every dial map, then starts it and waits for its ready line (by then it has
   * registered with PD). Returns its number.
   */
  async addStore(): Promise<number> {
    this.#assertOpen();
    if (this.#stores.length >= CLUSTER_MAX_STORES) {
      throw new RangeError(`a cluster has at most ${CLUSTER_MAX_STORES} stores`);
    }
    const index = this.#stores.length;
    const store: ClusterStore = {
      addr: `127.0.0.1:${freeLoopbackPort()}`,
      dataDir: `${this.root}/store${index}`,
      dialMapPath: `${this.root}/store${index}.dial_map.json`,
      server: null,
      running: false,
      paused: false,
    };
    const proxied = this.options.proxies !== false;
    for (const [other, peer] of proxied ? this.#stores.entries() : []) {
      this.#proxies.set(`${index},${other}`, LinkProxy.start(peer.addr));
      this.#proxies.set(`${other},${index}`, LinkProxy.start(store.addr));
    }
    this.#stores.push(store);
    for (let i = 0; proxied && i < this.#stores.length; i++) await this.#writeDialMap(i);
    const extra = this.options.storeArgs;
    const args = typeof extra === "function" ? extra(index) : extra ?? [];
    // The store may read the variables the harness hands it (its narrow set lacks them).
    const passed = Object.keys(this.options.env ?? {});
    const grants: ExtraGrants = proxied
      ? { read: [store.dialMapPath], env: [DIAL_MAP_ENV, ...passed] }
      : { env: passed };
    const dialMapEnv: Record<string, string> = proxied ? { [DIAL_MAP_ENV]: store.dialMapPath } : {};
    store.server = await startServer({
      dataDir: store.dataDir,
      args: [
        ...["--addr", store.addr, "--advertise-addr", store.addr, "--pd", this.pdEndpoints],
        ...args,
      ],
      env: { ...this.options.env, ...dialMapEnv },
      grants,
      launcher: dieWithParent(),
    });
    store.running = true;
    return index;
  }

  /** Cuts the links between stores `a` and `b`, both ways (see `LinkProxy.cut`). */
  cut(a: number, b: number): void {
    this.proxy(a, b).cut();
    this.proxy(b, a).cut();
  }

  /** Heals the links between stores `a` and `b`, both ways. */
  heal(a: number, b: number): void {
    this.proxy(a, b).heal();
    this.proxy(b, a).heal();
  }

  /** Cuts only store `from`'s connections to store `to` (what `from` sends `to`). */
  cutOneWay(from: number, to: number): void {
    this.proxy(from, to).cut();
  }

  /** Heals only store `from`'s connections to store `to`. */
  healOneWay(from: number, to: number): void {
    this.proxy(from, to).heal();
  }

  /** Cuts every link to and from store `index` (PD and clients still reach it). */
  isolate(index: number): void {
    for (const other of this.#others(index)) this.cut(index, other);
  }

  /** Heals every link to and from store `index`, including ones cut one by one. */
  rejoin(index: number): void {
    for (const other of this.#others(index)) this.heal(index, other);
  }

  /** Delays each chunk on store `from`'s connections to store `to` by `ms` (0: none). */
  delay(from: number, to: number, ms: number): void {
    this.proxy(from, to).delay(ms);
  }

  /** SIGKILLs store `index` and waits for it to exit. */
  async kill(index: number): Promise<void> {
    const store = this.#running(index);
    store.running = false;
    store.paused = false;
    await store.server!.kill();
  }

  /** SIGTERMs store `index` and waits for it to exit (bounded); returns its exit code. */
  async stopStore(index: number): Promise<number> {
    const store = this.#running(index);
    this.#continue(store);
    store.running = false;
    return await store.server!.stop();
  }

  /**
   * Starts store `index` again: same data directory, port and dial map. A running store is
   * stopped first (SIGTERM).
   */
  async restart(index: number): Promise<void> {
    this.#assertOpen();
    const store = this.#store(index);
    if (store.running) await this.stopStore(index);
    await this.#server(index).restart();
    store.running = true;
  }

  /** SIGSTOPs store `index`: its sockets stay open and nothing answers. */
  pause(index: number): void {
    const store = this.#running(index);
    if (store.paused) throw new Error(`store ${index} is already paused`);
    store.server!.signal("SIGSTOP");
    store.paused = true;
  }

  /** SIGCONTs store `index`. */
  resume(index: number): void {
    const store = this.#running(index);
    if (!store.paused) throw new Error(`store ${index} is not paused`);
    this.#continue(store);
  }

  /**
   * Stops everything this cluster started: the proxies, then every store (paused ones are
   * resumed first; each stop is bounded by `lib.ts`'s stop timeout), then PD. Then removes the
   * root, or, with `keepLogs`, prints where it is. Fails after stopping everything if any step
   * failed (the root is then kept).
   */
  async stop(options: { keepLogs?: boolean } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const failures: unknown[] = [];
    const settle = async (steps: Promise<unknown>[]) => {
      for (const outcome of await Promise.allSettled(steps)) {
        if (outcome.status === "rejected") failures.push(outcome.reason);
      }
    };
    await settle([...this.#proxies.values()].map((proxy) => proxy.close()));
    await settle(
      this.#stores.filter((store) => store.running).map((store) => {
        this.#continue(store);
        store.running = false;
        return store.server!.stop();
      }),
    );
    await settle(this.pds.filter((_, i) => !this.#pdsDown.has(i)).map((pd) => pd.stop()));
    if (options.keepLogs || failures.length > 0) {
      console.error(`e2e: kept the cluster's data and logs in ${this.root}`);
    } else {
      await Deno.remove(this.root, { recursive: true });
    }
    if (failures.length > 0) {
      throw new AggregateError(failures, `stopping the cluster in ${this.root} failed`);
    }
  }

  #continue(store: ClusterStore): void {
    if (!store.paused) return;
    store.server!.signal("SIGCONT");
    store.paused = false;
  }

  #others(index: number): number[] {
    this.#store(index);
    return this.#stores.map((_, i) => i).filter((i) => i !== index);
  }

  async #writeDialMap(index: number): Promise<void> {
    const map: Record<string, string> = {};
    for (const other of this.#others(index)) {
      map[this.#stores[other]!.addr] = this.proxy(index, other).addr;
    }
    const path = this.#store(index).dialMapPath;
    await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(map, null, 2) + "\n");
    await Deno.rename(`${path}.tmp`, path);
  }

  #store(index: number): ClusterStore {
    const store = this.#stores[index];
    if (store === undefined) {
      throw new RangeError(`no store ${index}: the cluster has ${this.#stores.length}`);
    }
    return store;
  }

  #server(index: number): TestServer {
    const server = this.#store(index).server;
    if (server === null) throw new Error(`store ${index} never started`);
    return server;
  }

  #running(index: number): ClusterStore {
    this.#assertOpen();
    const store = this.#store(index);
    if (!store.running) throw new Error(`store ${index} is not running`);
    return store;
  }

  #assertOpen(): void {
    if (this.#stopped) throw new Error(`the cluster in ${this.root} was stopped`);
  }
}

/**
 * Starts PD, then `options.stores` stores one after another (each registered with PD when its
 * start returns). A failed start stops what was started and keeps the logs.
 *
 * @example
 * ```ts
 * const cluster = await startCluster({ stores: 3 });
 * let passed = false;
 * try {
 *   cluster.isolate(0);
 *   // …
 *   passed = true;
 * } finally {
 *   await cluster.stop({ keepLogs: !passed });
 * }
 * ```
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const stores = options.stores ?? 3;
  if (options.pd !== undefined && options.pd !== 1 && options.pd !== 3) {
    throw new RangeError(`PD runs one or three members; asked for ${options.pd}`);
  }
  if (!Number.isInteger(stores) || stores < 1 || stores > CLUSTER_MAX_STORES) {
    throw new RangeError(`a cluster has 1 to ${CLUSTER_MAX_STORES} stores; asked for ${stores}`);
  }
  const cluster = await Cluster.create(options);
  try {
    for (let i = 0; i < stores; i++) await cluster.addStore();
  } catch (error) {
    await cluster.stop({ keepLogs: true }).catch(() => {});
    throw error;
  }
  return cluster;
}

/** Runs `body` against a fresh cluster; stops it afterwards, keeping the logs if `body` failed. */
export async function withCluster(
  options: ClusterOptions,
  body: (cluster: Cluster) => Promise<void>,
): Promise<void> {
  const cluster = await startCluster(options);
  let passed = false;
  try {
    await body(cluster);
    passed = true;
  } finally {
    await cluster.stop({ keepLogs: !passed });
  }
}
