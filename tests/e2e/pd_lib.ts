/**
 * End-to-end helpers for the PD process: `startPd` runs `src/pd/server/main.ts` as
 * `deno task pd` does (the narrow permissions of `scripts/pd.ts`), on loopback with port 0,
 * and reads the ports it bound from its ready line (the process is run by `lib.ts`'s
 * `testProcess`, as stores are); `PdRpc` speaks `pdpb.PD` and `basalt.PdAdmin` with our codecs.
 * Every wait has a deadline (`lib.ts`'s ready and stop timeouts, `PD_CALL_TIMEOUT_MS`).
 */
import * as grpc from "@grpc/grpc-js";
import { newGrpcClient } from "../../src/util/grpc_client.ts";
import { pdpb } from "../../proto/mod.ts";
import { pdRunArgs } from "../../scripts/pd.ts";
import { testProcess } from "./lib.ts";

const PD_CALL_TIMEOUT_MS = 10_000;

/** A running (or stopped) PD process. */
export interface TestPd {
  dataDir: string;
  logPath: string;
  clientAddr: string;
  statusAddr: string;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<void>;
  /** Starts the process again on the same data directory (new ports). */
  restart(): Promise<void>;
}

/**
 * Starts a PD on a data directory (a new temporary one by default), with `args` added to its
 * flags and `config` (TOML text) passed with `--config`.
 */
export async function startPd(
  options: {
    dataDir?: string;
    args?: string[];
    config?: string;
    /** A command PD runs under, e.g. `["setpriv", "--pdeathsig", "KILL", "--"]`. */
    launcher?: string[];
  } = {},
): Promise<TestPd> {
  const dataDir = options.dataDir ?? `${await Deno.makeTempDir({ prefix: "basalt_pd_e2e_" })}/pd`;
  const logPath = `${dataDir}.log`;
  const configArgs: string[] = [];
  if (options.config !== undefined) {
    await Deno.writeTextFile(`${dataDir}.toml`, options.config);
    configArgs.push("--config", `${dataDir}.toml`);
  }
  const flags = [
    ...configArgs,
    "--client-urls",
    "http://127.0.0.1:0",
    "--status-addr",
    "127.0.0.1:0",
    "--data-dir",
    dataDir,
    "--log-file",
    `${dataDir}.server.log`,
    ...(options.args ?? []),
  ];
  const run = pdRunArgs(flags);
  if (!Array.isArray(run)) throw new Error("startPd: PD printed its help");
  const launcher = options.launcher ?? [];
  const proc = testProcess({
    command: launcher[0] ?? Deno.execPath(),
    args: [...launcher.slice(1), ...(launcher.length > 0 ? [Deno.execPath()] : []), ...run],
    logPath,
    ready: /basalt-pd ready: client (\S+) status (\S+)/,
    what: "PD",
  });
  const pd: TestPd = {
    dataDir,
    logPath,
    clientAddr: "",
    statusAddr: "",
    stop: proc.stop,
    kill: proc.kill,
    restart: async () => {
      const match = await proc.launch();
      pd.clientAddr = match[1]!;
      pd.statusAddr = match[2]!;
    },
  };
  await pd.restart();
  return pd;
}

/** Runs `body` against a fresh PD; stops it and removes its directory (kept on failure). */
export async function withPd(body: (pd: TestPd) => Promise<void>): Promise<void> {
  const pd = await startPd();
  let failed = true;
  try {
    await body(pd);
    failed = false;
  } finally {
    try {
      await pd.stop();
    } catch { /* already stopped by the test */ }
    const parent = pd.dataDir.replace(/\/pd$/, "");
    if (failed) console.error(`e2e: kept PD data and logs of the failed test in ${parent}`);
    else await Deno.remove(parent, { recursive: true });
  }
}

interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
}

/** A raw client of the PD process's gRPC port. */
export class PdRpc {
  readonly #client: grpc.Client;
  clusterId = 0n;

  constructor(readonly addr: string) {
    this.#client = newGrpcClient(addr, grpc.credentials.createInsecure());
  }

  /** Learns the cluster id (GetMembers). */
  async connect(): Promise<this> {
    const members = await this.call<pdpb.GetMembersResponse>(
      "GetMembers",
      { request: pdpb.GetMembersRequest, response: pdpb.GetMembersResponse },
      {},
    );
    this.clusterId = members.header?.clusterId ?? 0n;
    return this;
  }

  header(): pdpb.RequestHeader.$Properties {
    return { clusterId: this.clusterId };
  }

  callBytes(path: string, request: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest<Uint8Array, Uint8Array>(
        path,
        (bytes) => Buffer.from(bytes),
        (buffer) => new Uint8Array(buffer),
        request,
        { deadline: Date.now() + PD_CALL_TIMEOUT_MS },
        (error, response) => error ? reject(error) : resolve(response!),
      );
    });
  }

  /** Calls `pdpb.PD/<method>`; the request gets this cluster's header unless it has one. */
  async call<Res>(
    method: string,
    codecs: { request: Codec<never>; response: Codec<unknown> },
    request: Record<string, unknown>,
  ): Promise<Res> {
    const withHeader = { header: this.header(), ...request } as never;
    const bytes = await this.callBytes(
      `/pdpb.PD/${method}`,
      codecs.request.encode(withHeader).finish(),
    );
    return codecs.response.decode(bytes) as Res;
  }

  /** Calls `basalt.PdAdmin/<method>` with a JSON object. */
  async admin(
    method: string,
    request: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const bytes = await this.callBytes(
      `/basalt.PdAdmin/${method}`,
      new TextEncoder().encode(JSON.stringify(request)),
    );
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  /** A bidi stream of `pdpb.PD/<method>`: `send` writes, `next` awaits the next response. */
  stream<Res>(method: string, response: Codec<unknown>) {
    const call = this.#client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
      `/pdpb.PD/${method}`,
      (bytes) => Buffer.from(bytes),
      (buffer) => new Uint8Array(buffer),
    );
    const arrived: Res[] = [];
    const waiting: ((value: Res) => void)[] = [];
    call.on("data", (bytes: Uint8Array) => {
      const decoded = response.decode(bytes) as Res;
      const waiter = waiting.shift();
      if (waiter !== undefined) waiter(decoded);
      else arrived.push(decoded);
    });
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", () => {});
    return {
      send: (bytes: Uint8Array) => call.write(bytes),
      /** The next response, or `null` when none comes within `timeoutMs`. */
      next: (timeoutMs = PD_CALL_TIMEOUT_MS): Promise<Res | null> => {
        const ready = arrived.shift();
        if (ready !== undefined) return Promise.resolve(ready);
        return new Promise((resolve) => {
          const timer = setTimeout(() => {
            waiting.splice(waiting.indexOf(waiter), 1);
            resolve(null);
          }, timeoutMs);
          const waiter = (value: Res) => {
            clearTimeout(timer);
            resolve(value);
          };
          waiting.push(waiter);
        });
      },
      end: () => call.end(),
      ended,
    };
  }

  close(): void {
    this.#client.close();
  }
}

/** Whether `pd` leads and serves: it answers IsBootstrapped without an error header. */
export async function pdServes(pd: TestPd): Promise<boolean> {
  const rpc = new PdRpc(pd.clientAddr);
  try {
    await rpc.connect();
    const answer = await rpc.call<pdpb.IsBootstrappedResponse>("IsBootstrapped", {
      request: pdpb.IsBootstrappedRequest,
      response: pdpb.IsBootstrappedResponse,
    }, {});
    return answer.header?.error == null;
  } catch {
    return false; // a follower refuses with UNAVAILABLE "not leader"; a dead member does not answer
  } finally {
    rpc.close();
  }
}
