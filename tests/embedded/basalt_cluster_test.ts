/**
 * The key-value API against a 3-store cluster (`Basalt.connect({ pd })`): every case of
 * `basalt_suite.ts`, which `basalt_test.ts` runs in-process.
 */
import { Basalt } from "../../mod.ts";
import { startCluster } from "../e2e/cluster.ts";
import { BASALT_CASES } from "./basalt_suite.ts";

Deno.test("Basalt.connect: the key-value API on a 3-store cluster", async (t) => {
  const cluster = await startCluster({ stores: 3 });
  try {
    const db = await Basalt.connect({ pd: [cluster.pdAddr], reclaimIntervalMs: 0 });
    try {
      for (const item of BASALT_CASES) await t.step(item.name, () => item.run(db));
    } finally {
      await db.close();
    }
  } finally {
    await cluster.stop();
  }
});
