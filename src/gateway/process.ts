/**
 * The process around a gateway (`deno task redis`, `deno task http`): flags `--addr` and `--pd`,
 * checked; the gateway started as a client of the cluster behind PD (a standalone store serves
 * PD too, so its gRPC address works as `--pd`); `basalt NAME ready: H:P` once it listens; a
 * clean stop on SIGINT/SIGTERM.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { addrProblem, splitAddr } from "../server/config.ts";

/** A gateway as its process sees it. */
export interface RunningGateway {
  /** What the ready line names. */
  readyAddr: string;
  close(): Promise<void>;
}

/** Runs the gateway `name` (its flags in `args`); resolves with the exit code. */
export async function runGatewayProcess(
  args: string[],
  gateway: {
    name: string;
    defaultAddr: string;
    start(parts: { pd: string[]; host: string; port: number }): Promise<RunningGateway>;
  },
): Promise<number> {
  const { name, defaultAddr } = gateway;
  const usage = `Usage: deno task ${name} -- [--addr HOST:PORT] --pd ADDR[,ADDR…]

  --addr   listen address of the gateway (${defaultAddr}; port 0 = any free port)
  --pd     PD addresses, comma-separated (or a standalone store's gRPC address)
  --help   print this help`;
  let values: { addr?: string; pd?: string; help?: boolean };
  try {
    values = parseArgs({
      args: args[0] === "--" ? args.slice(1) : args,
      options: { addr: { type: "string" }, pd: { type: "string" }, help: { type: "boolean" } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    console.error(`basalt ${name}: ${(error as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help === true) {
    console.log(usage);
    return 0;
  }
  const addr = values.addr ?? defaultAddr;
  const pd = (values.pd ?? "").split(",").map((part) => part.trim()).filter((part) => part !== "");
  const problem = addrProblem(addr) ?? (pd.length === 0 ? "--pd is required" : null) ??
    pd.map(addrProblem).find((p) => p !== null) ?? null;
  if (problem !== null) {
    console.error(`basalt ${name}: ${problem}\n${usage}`);
    return 2;
  }
  const { host, port } = splitAddr(addr);
  const running = await gateway.start({ pd, host, port });
  const stop = new Promise<string>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, () => resolve(signal));
    }
  });
  console.log(`basalt ${name} ready: ${running.readyAddr}`);
  await stop;
  await running.close();
  return 0;
}
