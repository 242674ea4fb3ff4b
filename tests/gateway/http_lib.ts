/**
 * Test harness of the HTTP API: a store process serving it (`serve --http-addr`, standalone), or
 * the gateway process of `deno task http` over a real 3-store cluster (tests/e2e); `fetch`
 * and `curl` helpers with deadlines.
 */
import { startServer, testProcess, type TestServer } from "../e2e/lib.ts";
import { type Cluster, startCluster } from "../e2e/cluster.ts";

/** Longest one HTTP call of a test may take. */
export const HTTP_TEST_DEADLINE_MS = 20_000;

/** A running HTTP API and what it runs over. */
export interface HttpFixture {
  /** `http://host:port`. */
  base: string;
  stop(): Promise<void>;
}

/** The address after ` http ` in a store's ready line, read from its log. */
async function httpAddrOf(server: TestServer): Promise<string> {
  const text = await Deno.readTextFile(server.logPath);
  const match = /basalt ready: .* http (\S+)/.exec(text);
  if (match === null) throw new Error(`no http address in the ready line of ${server.logPath}`);
  return match[1]!;
}

/** A fresh standalone store serving the HTTP API (`--http-addr 127.0.0.1:0`). */
export async function standaloneHttp(): Promise<HttpFixture & { server: TestServer }> {
  const server = await startServer({ args: ["--http-addr", "127.0.0.1:0"] });
  return {
    server,
    base: `http://${await httpAddrOf(server)}`,
    stop: async () => {
      await server.stop();
      await Deno.remove(server.dataDir.replace(/\/data$/, ""), { recursive: true });
    },
  };
}

/** A fresh 3-store cluster and the gateway process of `deno task http` over its PD. */
export async function clusterHttp(): Promise<HttpFixture & { cluster: Cluster }> {
  const cluster = await startCluster({ stores: 3 });
  const gateway = testProcess({
    command: Deno.execPath(),
    args: [
      "run",
      "--no-prompt",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      new URL("../../src/gateway/http/main.ts", import.meta.url).pathname,
      "--addr",
      "127.0.0.1:0",
      "--pd",
      cluster.pdAddr,
    ],
    logPath: `${cluster.root}/http_gateway.log`,
    ready: /basalt http ready: (\S+)/,
    what: "http gateway",
  });
  let match: RegExpExecArray;
  try {
    match = await gateway.launch();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return {
    cluster,
    base: `http://${match[1]!}`,
    stop: async () => {
      await gateway.stop();
      await cluster.stop();
    },
  };
}

/** `fetch` with the test deadline. */
export function fetchWithDeadline(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(HTTP_TEST_DEADLINE_MS) });
}

/** A JSON answer: status, headers and body. */
export interface JsonAnswer {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** `fetch` resolving with the parsed JSON body (or null for none). */
export async function fetchJson(url: string, init: RequestInit = {}): Promise<JsonAnswer> {
  const response = await fetchWithDeadline(url, init);
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === "" ? null : JSON.parse(text),
  };
}

/** Runs `curl -sS args…` with the deadline; resolves with its stdout and exit code. */
export async function curl(args: string[]): Promise<{ code: number; stdout: string }> {
  const output = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", String(HTTP_TEST_DEADLINE_MS / 1000), ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(HTTP_TEST_DEADLINE_MS + 5_000),
  }).output();
  return { code: output.code, stdout: new TextDecoder().decode(output.stdout) };
}
