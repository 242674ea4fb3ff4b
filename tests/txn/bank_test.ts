/**
 * The bank workload (`bank.ts`) through one standalone store.
 */
import { TxnKV } from "../../src/client/txn/mod.ts";
import { seedFromEnv } from "../../src/util/random.ts";
import { withServer } from "../e2e/lib.ts";
import { runBank, type Tally } from "./bank.ts";

Deno.test({
  name: "bank: concurrent transfers with aborts and crashed clients keep the total (SI)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const seed = seedFromEnv();
    try {
      let tally: Tally | null = null;
      await withServer(async (server) => {
        tally = await runBank({ connect: () => TxnKV.connect({ host: server.grpcAddr }) }, seed);
      });
      console.log(`bank SEED=${seed} ${JSON.stringify(tally)}`);
    } catch (error) {
      console.error(`bank test failed with SEED=${seed}`);
      throw error;
    }
  },
});
