/**
 * End-to-end test library: real `src/server/main.ts` processes on loopback, and a raw gRPC
 * client speaking our codecs.
 *
 * - Ports: servers are started with port 0 and report the ports they bound in their ready line,
 *   so parallel tests never race for a port. `freeLoopbackPort()` exists for tests that need a
 *   port number before starting something.
 * - Every server gets a fresh temporary data directory and a log file in it. `withServer` removes
 *   the directory when the test passes and keeps it (printing where) when it fails.
 * - Every wait is bounded (`READY_TIMEOUT_MS`, `STOP_TIMEOUT_MS`).
 * - Permissions: a server runs with exactly the Deno permissions `deno task serve` grants for
 *   its command line (`scripts/serve.ts`), so every end-to-end test also proves that narrow set
 *   suffices. Only a command line the store refuses (a configuration test) runs with `-A`: it
 *   stops before it could use a permission.
 */
import * as grpc from "@grpc/grpc-js";
import { newGrpcClient } from "../../src/util/grpc_client.ts";
import { tikvpb } from "../../proto/mod.ts";
import { storeRunArgs } from "../../scripts/serve.ts";
import { ConfigError } from "../../src/server/config.ts";

const MAIN = new URL("../../src/server/main.ts", import.meta.url).pathname;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;

/** The lowest port `freeLoopbackPort` picks; the highest is below the kernel's ephemeral range. */
export const LOOPBACK_PORT_MIN = 21_000;
/** Random ports `freeLoopbackPort` tries before it gives up. */
export const LOOPBACK_PORT_PICK_ATTEMPTS = 200;

/** Ports this process has handed out (so two servers of one test run never get the same one). */
const reservedPorts = new Set<number>();

/** The first port of the kernel's ephemeral range (Linux; 32768 when unreadable). */
function ephemeralPortMin(): number {
  try {
    const text = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range");
    const low = Number(text.trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > LOOPBACK_PORT_MIN + 1000) return low;
  } catch { /* not Linux, or not readable */ }
  return 32_768;
}

/**
 * A TCP port on 127.0.0.1 for a test that must know a port before it starts something (a PD
 * member's peer URL, a store's fixed address): free when returned (bound and released), below
 * the kernel's ephemeral range — so no server binding port 0 and no outgoing connection can take
 * it in between, which is how a port learned by binding port 0 got lost to a concurrent test —
 * and never handed out twice by this process.
 */
export function freeLoopbackPort(): number {
  const high = ephemeralPortMin();
  for (let attempt = 0; attempt < LOOPBACK_PORT_PICK_ATTEMPTS; attempt++) {
    const port = LOOPBACK_PORT_MIN + Math.floor(Math.random() * (high - LOOPBACK_PORT_MIN));
    if (reservedPorts.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      continue; // In use.
    }
    reservedPorts.add(port);
    return port;
  }
  throw new Error(
    `no free loopback port in ${LOOPBACK_PORT_MIN}..${high} after ${LOOPBACK_PORT_PICK_ATTEMPTS} tries`,
  );
}

/** A running (or stopped) store process. */
export interface TestServer {
  dataDir: string;
  logPath: string;
  grpcAddr: string;
  statusAddr: string;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<void>;
  /** Starts the process again on the same data directory (new ports). */
  restart(): Promise<void>;
  /** Resolves when the current process exits, however it exits. */
  status(): Promise<Deno.CommandStatus>;
  /** Sends `signal` to the current process (e.g. SIGSTOP/SIGCONT to pause it). */
  signal(signal: Deno.Signal): void;
}

/**
 * Reads a child's stdout (copied into `log`) until `ready` matches, within READY_TIMEOUT_MS;
 * then keeps draining it into the log so the child never blocks on a full pipe.
 */
async function readReadyLine(
  stdout: ReadableStream<Uint8Array>,
  log: Deno.FsFile,
  options: { ready: RegExp; what: string },
): Promise<RegExpExecArray> {
  const reader = stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), Math.max(0, deadline - Date.now()));
    });
    const next = await Promise.race([reader.read(), late]);
    clearTimeout(timer);
    if (next === "late") break;
    const { value, done } = next;
    if (done) break;
    text += value;
    log.writeSync(new TextEncoder().encode(value));
    const match = options.ready.exec(text);
    if (match !== null) {
      (async () => {
        try {
          for (;;) {
            const next = await reader.read();
            if (next.done) break;
            log.writeSync(new TextEncoder().encode(next.value));
          }
        } catch { /* the log was closed: the test is over */ }
      })();
      return match;
    }
  }
  throw new Error(
    `${options.what} did not print its ready line within ${READY_TIMEOUT_MS} ms; output so far:\n${text}`,
  );
}

/** The life of one test process: started by `launch`, stopped with a bounded wait. */
export interface TestProcess {
  /** (Re)starts the process; resolves with its ready line's match. */
  launch(): Promise<RegExpExecArray>;
  /** SIGTERM, wait for exit (SIGKILL after STOP_TIMEOUT_MS); returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<void>;
  /** Resolves when the current process exits, however it exits. */
  status(): Promise<Deno.CommandStatus>;
  /** Sends `signal` to the current process. */
  signal(signal: Deno.Signal): void;
}

/**
 * Runs `command args` as a test process: stdout and stderr go to `logPath`, `launch` waits for
 * the `ready` line, and every wait is bounded. Shared by the store's and PD's test helpers.
 */
export function testProcess(
  options: {
    command: string;
    args: string[];
    logPath: string;
    ready: RegExp;
    what: string;
    /** Variables added to the inherited environment. */
    env?: Record<string, string>;
  },
): TestProcess {
  let child: Deno.ChildProcess;
  let log: Deno.FsFile;
  const waitExit = async (signal: Deno.Signal): Promise<number> => {
    try {
      child.kill(signal);
    } catch { /* already exited */ }
    const timer = setTimeout(() => {
      // It may have exited meanwhile (its status not read yet on a loaded machine): then
      // `kill` throws, uncaught inside a timer, and fails whatever test runs.
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
    }, STOP_TIMEOUT_MS);
    const status = await child.status;
    clearTimeout(timer);
    log.close();
    return status.code;
  };
  return {
    async launch() {
      log = await Deno.open(options.logPath, { append: true, create: true });
      child = new Deno.Command(options.command, {
        args: options.args,
        env: options.env,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      child.stderr.pipeTo(log.writable, { preventClose: true }).catch(() => {});
      try {
        return await readReadyLine(child.stdout, log, options);
      } catch (error) {
        // A process that exited before its ready line (a port still taken, a bad flag) must not
        // hide why behind "already terminated".
        try {
          child.kill("SIGKILL");
        } catch { /* already exited */ }
        await child.status;
        log.close();
        throw error;
      }
    },
    stop: () => waitExit("SIGTERM"),
    kill: async () => void await waitExit("SIGKILL"),
    status: () => child.status,
    signal: (signal) => child.kill(signal),
  };
}

/** Test-only grants added to a store's narrow permissions (files and variables tests hand it). */
export interface ExtraGrants {
  /** Paths added to `--allow-read`, e.g. the dial-map file of `cluster.ts`. */
  read?: string[];
  /** Variable names added to `--allow-env`. */
  env?: string[];
}

/** Appends `extra` to the `--allow-<name>=` list in `run` (which must have one). */
function widen(run: string[], name: string, extra: string[] = []): string[] {
  if (extra.length === 0) return run;
  const flag = `--allow-${name}=`;
  const at = run.findIndex((arg) => arg.startsWith(flag));
  if (at < 0) throw new Error(`the store's run arguments have no ${flag}: ${run.join(" ")}`);
  const widened = [...run];
  widened[at] = `${run[at]},${extra.join(",")}`;
  return widened;
}

/** The `deno` arguments of a store started with `args`: `deno task serve`'s, narrow permissions. */
function runArgs(args: string[], grants: ExtraGrants = {}): string[] {
  try {
    const run = storeRunArgs(args);
    if (Array.isArray(run)) return widen(widen(run, "read", grants.read), "env", grants.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
  }
  return ["run", "-A", MAIN, ...args];
}

/**
 * Starts a store on a data directory (a new temporary one by default). `config` is the text
 * of a TOML configuration file, written beside the data directory and passed with `--config`.
 */
export async function startServer(
  options: {
    dataDir?: string;
    args?: string[];
    config?: string;
    /** A command the store runs under, e.g. `["prlimit", "--nofile=256:256", "--"]`. */
    launcher?: string[];
    /** Variables added to the store's inherited environment. */
    env?: Record<string, string>;
    /** Test-only permissions added to the store's narrow set. */
    grants?: ExtraGrants;
  } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? `${await Deno.makeTempDir({ prefix: "basalt_e2e_" })}/data`;
  const logPath = `${dataDir}.log`;
  const configArgs: string[] = [];
  if (options.config !== undefined) {
    await Deno.writeTextFile(`${dataDir}.toml`, options.config);
    configArgs.push("--config", `${dataDir}.toml`);
  }
  const launcher = options.launcher ?? [];
  const proc = testProcess({
    command: launcher[0] ?? Deno.execPath(),
    args: [...launcher.slice(1), ...(launcher.length > 0 ? [Deno.execPath()] : [])].concat(
      runArgs(
        [...configArgs, "--addr", "127.0.0.1:0", "--status-addr", "127.0.0.1:0"]
          .concat(["--data-dir", dataDir, "--log-file", `${dataDir}.server.log`])
          .concat(options.args ?? []),
        options.grants,
      ),
    ),
    logPath,
    ready: /basalt ready: grpc (\S+) status (\S+)/,
    what: "server",
    env: options.env,
  });
  const server: TestServer = {
    dataDir,
    logPath,
    grpcAddr: "",
    statusAddr: "",
    stop: proc.stop,
    kill: proc.kill,
    status: proc.status,
    signal: proc.signal,
    restart: async () => {
      const match = await proc.launch();
      server.grpcAddr = match[1]!;
      server.statusAddr = match[2]!;
    },
  };
  await server.restart();
  return server;
}

/**
 * Runs `body` against a fresh server; stops it afterwards. On failure the data directory and
 * logs are kept and their place printed.
 */
export async function withServer(
  body: (server: TestServer) => Promise<void>,
  options: { args?: string[]; config?: string; launcher?: string[] } = {},
): Promise<void> {
  const server = await startServer(options);
  let failed = true;
  try {
    await body(server);
    failed = false;
  } finally {
    try {
      await server.stop();
    } catch { /* already stopped by the test */ }
    const parent = server.dataDir.replace(/\/data$/, "");
    if (failed) console.error(`e2e: kept data and logs of the failed test in ${parent}`);
    else await Deno.remove(parent, { recursive: true });
  }
}

/** A protobufjs static message class. */
interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
}

/** A raw gRPC client of `tikvpb.Tikv` using our codecs. */
export class TikvClient {
  readonly #client: grpc.Client;

  /** A client of the store at `addr`, in plain text unless `credentials` say otherwise. */
  constructor(addr: string, credentials = grpc.credentials.createInsecure()) {
    this.#client = newGrpcClient(addr, credentials, {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      "grpc.max_send_message_length": 64 * 1024 * 1024,
    });
  }

  /** Calls `/tikvpb.Tikv/<method>` with bytes, returning the response bytes. */
  callBytes(method: string, request: Uint8Array, timeoutMs = 10_000): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest<Uint8Array, Uint8Array>(
        `/tikvpb.Tikv/${method}`,
        (bytes) => Buffer.from(bytes),
        (buffer) => new Uint8Array(buffer),
        request,
        { deadline: Date.now() + timeoutMs },
        (error, response) => error ? reject(error) : resolve(response!),
      );
    });
  }

  /** Calls a unary method with messages. */
  async call<Req, Res>(
    method: string,
    codecs: { request: Codec<Req>; response: Codec<unknown> },
    request: Req,
  ): Promise<Res> {
    const bytes = await this.callBytes(method, codecs.request.encode(request).finish());
    return codecs.response.decode(bytes) as Res;
  }

  /**
   * Opens a BatchCommands stream. `send` writes one message and resolves when every one of its
   * request ids is answered (the server may answer in several messages, as sub-requests
   * complete), with the responses in request order; it fails when the stream breaks or the
   * answers take longer than `timeoutMs`.
   */
  batchCommands(): {
    send(
      message: tikvpb.BatchCommandsRequest.$Properties,
      timeoutMs?: number,
    ): Promise<tikvpb.BatchCommandsResponse>;
    close(): void;
  } {
    const stream = this.#client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
      "/tikvpb.Tikv/BatchCommands",
      (bytes) => Buffer.from(bytes),
      (buffer) => new Uint8Array(buffer),
    );
    const answers = new Map<bigint, tikvpb.BatchCommandsResponse.Response>();
    const waiting = new Set<() => void>();
    /** Why the stream can answer no more, once it cannot: every waiter fails with it. */
    let broken: Error | null = null;
    const breakWith = (error: Error) => {
      broken ??= error;
      for (const check of [...waiting]) check();
    };
    stream.on("data", (bytes: Uint8Array) => {
      const message = tikvpb.BatchCommandsResponse.decode(bytes);
      message.requestIds.forEach((id, i) => answers.set(id, message.responses[i]!));
      for (const check of [...waiting]) check();
    });
    stream.on("error", (error: Error) => breakWith(error));
    stream.on("end", () => breakWith(new Error("BatchCommands stream ended by the server")));
    return {
      send: (message, timeoutMs = 10_000) =>
        new Promise((resolve, reject) => {
          const ids = message.requestIds ?? [];
          const timer = setTimeout(() => {
            waiting.delete(check);
            const missing = ids.filter((id) => !answers.has(BigInt(id))).length;
            reject(
              new Error(
                `BatchCommands: ${missing} of ${ids.length} answers not in ${timeoutMs} ms`,
              ),
            );
          }, timeoutMs);
          const check = () => {
            if (ids.every((id) => answers.has(BigInt(id)))) {
              const responses = ids.map((id) => answers.get(BigInt(id))!);
              for (const id of ids) answers.delete(BigInt(id));
              resolve(tikvpb.BatchCommandsResponse.create({ responses, requestIds: ids }));
            } else if (broken !== null) {
              reject(broken);
            } else {
              return;
            }
            waiting.delete(check);
            clearTimeout(timer);
          };
          waiting.add(check);
          stream.write(tikvpb.BatchCommandsRequest.encode(message).finish());
          check();
        }),
      close: () => stream.end(),
    };
  }

  close(): void {
    this.#client.close();
  }
}
