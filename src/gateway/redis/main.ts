/**
 * `deno task redis -- --addr 127.0.0.1:6379 --pd ADDR[,ADDR…]`: a Redis gateway in its own
 * process, a client of the cluster behind PD (a standalone store serves PD too, so its gRPC
 * address works as `--pd`). Prints `basalt redis ready: H:P` once it listens; stops on
 * SIGINT/SIGTERM (`src/gateway/process.ts`).
 */
import { TxnKV } from "../../client/mod.ts";
import { runGatewayProcess } from "../process.ts";
import { RedisGateway } from "./gateway.ts";

if (import.meta.main) {
  Deno.exit(
    await runGatewayProcess(Deno.args, {
      name: "redis",
      defaultAddr: "127.0.0.1:6379",
      async start({ pd, host, port }) {
        const kv = await TxnKV.connect({ pd });
        const gateway = await RedisGateway.start({
          hostname: host,
          port,
          kv,
          ownsClient: true,
          onError: (error) => console.error(`basalt redis: ${(error as Error).message ?? error}`),
        });
        return { readyAddr: `${host}:${gateway.port}`, close: () => gateway.close() };
      },
    }),
  );
}
