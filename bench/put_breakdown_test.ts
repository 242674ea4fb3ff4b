import assert from "node:assert/strict";
import { Logger } from "../src/server/log.ts";
import { PUT_STAGES_LOG_MESSAGE, StageClock } from "../src/raftstore/worker/stage_clock.ts";
import { readDumps } from "./put_breakdown.ts";

Deno.test("put breakdown reads each thread's last stage dump from a store's log as written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "basalt_put_breakdown_" });
  try {
    const file = `${dir}/store.log`;
    const logger = new Logger({ level: "info", file });
    const clock = new StageClock();
    clock.record("worker.write", 2.5);
    const dump = (thread: string, group?: string) =>
      logger.info(PUT_STAGES_LOG_MESSAGE, {
        thread,
        figures: JSON.stringify(clock.snapshot()),
        ...(group === undefined ? {} : { group }),
      });
    dump("main of store 1");
    dump("worker of store 1", "0");
    clock.record("worker.write", 1.5);
    clock.count("n");
    dump("worker of store 1", "0"); // the later dump of the same thread wins
    logger.info("some other line", { figures: "not a dump" });
    logger.close();
    const dumps = readDumps(await Deno.readTextFile(file), 2);
    assert.deepEqual([...dumps.keys()].sort(), [
      "2/main of store 1/main",
      "2/worker of store 1/0",
    ]);
    assert.deepEqual(dumps.get("2/worker of store 1/0"), clock.snapshot());
    assert.equal(dumps.get("2/main of store 1/main")!.stages["worker.write"]!.count, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
