/**
 * `deno task http -- --addr 127.0.0.1:8080 --pd ADDR[,ADDR…]`: the HTTP gateway in its own
 * process, a client of the cluster behind PD (a standalone store serves PD too, so its gRPC
 * address works as `--pd`). Prints `basalt http ready: H:P` once it listens; stops on
 * SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { Basalt } from "../../embedded/basalt.ts";
import { addrProblem, splitAddr } from "../../server/config.ts";
import { HttpGateway } from "./gateway.ts";

const USAGE = `Usage: deno task http -- [--addr HOST:PORT] --pd ADDR[,ADDR…]

  --addr   listen address of the gateway (127.0.0.1:8080; port 0 = any free port)
  --pd     PD addresses, comma-separated (or a standalone store's gRPC address)
  --help   print this help`;

async function main(args: string[]): Promise<number> {
  let values: { addr?: string; pd?: string; help?: boolean };
  try {
    values = parseArgs({
      args: args[0] === "--" ? args.slice(1) : args,
      options: { addr: { type: "string" }, pd: { type: "string" }, help: { type: "boolean" } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    console.error(`basalt http: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const addr = values.addr ?? "127.0.0.1:8080";
  const pd = (values.pd ?? "").split(",").map((part) => part.trim()).filter((part) => part !== "");
  const problem = addrProblem(addr) ?? (pd.length === 0 ? "--pd is required" : null) ??
    pd.map(addrProblem).find((p) => p !== null) ?? null;
  if (problem !== null) {
    console.error(`basalt http: ${problem}\n${USAGE}`);
    return 2;
  }
  const db = await Basalt.connect({ pd });
  const { host, port } = splitAddr(addr);
  const gateway = await HttpGateway.start({
    hostname: host,
    port,
    db,
    ownsDb: true,
    onError: (error) => console.error(`basalt http: ${(error as Error).stack ?? error}`),
  });
  const stop = new Promise<string>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, () => resolve(signal));
    }
  });
  console.log(`basalt http ready: ${gateway.addr}`);
  await stop;
  await gateway.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
