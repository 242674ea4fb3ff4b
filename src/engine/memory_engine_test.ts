import { runConformance } from "./conformance.ts";
import { MemoryEngine } from "./memory_engine.ts";

runConformance("memory", () => {
  const engine = new MemoryEngine();
  return Promise.resolve({ engine, cleanup: () => Promise.resolve(engine.close()) });
});
