import { runConformance } from "./conformance.ts";
import { RocksDbEngine } from "./rocksdb_engine.ts";

runConformance("rocksdb", async () => {
  const directory = await Deno.makeTempDir({ prefix: "basalt-engine-" });
  const engine = RocksDbEngine.open(directory, { blockCacheBytes: 8 << 20 });
  return {
    engine,
    cleanup: async () => {
      engine.close();
      await Deno.remove(directory, { recursive: true });
    },
  };
});
