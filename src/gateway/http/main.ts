/**
 * `deno task http -- --addr 127.0.0.1:8080 --pd ADDR[,ADDR…]`: the HTTP gateway in its own
 * process, a client of the cluster behind PD (a standalone store serves PD too, so its gRPC
 * address works as `--pd`). Prints `basalt http ready: H:P` once it listens; stops on
 * SIGINT/SIGTERM (`src/gateway/process.ts`).
 */
import { Basalt } from "../../embedded/basalt.ts";
import { runGatewayProcess } from "../process.ts";
import { HttpGateway } from "./gateway.ts";

if (import.meta.main) {
  Deno.exit(
    await runGatewayProcess(Deno.args, {
      name: "http",
      defaultAddr: "127.0.0.1:8080",
      async start({ pd, host, port }) {
        const db = await Basalt.connect({ pd });
        const gateway = await HttpGateway.start({
          hostname: host,
          port,
          db,
          ownsDb: true,
          onError: (error) => console.error(`basalt http: ${(error as Error).stack ?? error}`),
        });
        return { readyAddr: gateway.addr, close: () => gateway.close() };
      },
    }),
  );
}
