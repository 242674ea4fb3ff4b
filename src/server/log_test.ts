/**
 * The logger's bounds (issue #9, item 6): a repeated warning or error is written at most
 * LOG_REPEAT_MAX_LINES times per LOG_REPEAT_WINDOW_MS, the next line says how many were held
 * back, and at most LOG_REPEAT_MAX_MESSAGES messages are tracked.
 */
import assert from "node:assert/strict";
import {
  LOG_REPEAT_MAX_LINES,
  LOG_REPEAT_MAX_MESSAGES,
  LOG_REPEAT_WINDOW_MS,
} from "../constants.ts";
import { Logger, RepeatLimiter } from "./log.ts";

async function withLog(body: (log: Logger, clock: { ms: number }) => void): Promise<string[]> {
  const path = await Deno.makeTempFile({ prefix: "basalt_log_" });
  const clock = { ms: 1_000_000 };
  const log = new Logger({ level: "info", file: path, nowMs: () => clock.ms });
  try {
    body(log, clock);
  } finally {
    log.close();
  }
  const lines = (await Deno.readTextFile(path)).split("\n").filter((line) => line !== "");
  await Deno.remove(path);
  return lines;
}

Deno.test("a repeated error is written LOG_REPEAT_MAX_LINES times per window; the next window counts the rest", async () => {
  const lines = await withLog((log, clock) => {
    for (let i = 0; i < 1_000; i++) log.error("request failed", { attempt: i });
    clock.ms += LOG_REPEAT_WINDOW_MS;
    log.error("request failed", { attempt: 1_000 });
  });
  assert.equal(lines.length, LOG_REPEAT_MAX_LINES + 1);
  assert.match(lines.at(-1)!, /attempt="1000" suppressed="995"$/);
  assert.doesNotMatch(lines[0]!, /suppressed/);
});

Deno.test("different messages and info lines are not held back by another message's repeats", async () => {
  const lines = await withLog((log) => {
    for (let i = 0; i < 100; i++) log.error("engine cannot write");
    log.error("another error");
    log.warn("engine cannot write"); // another level: its own count
    for (let i = 0; i < 20; i++) log.info("progress", { i });
  });
  assert.equal(lines.filter((line) => line.includes("engine cannot write")).length, 6);
  assert.equal(lines.filter((line) => line.includes("another error")).length, 1);
  assert.equal(lines.filter((line) => line.includes("progress")).length, 20);
});

Deno.test("RepeatLimiter tracks at most LOG_REPEAT_MAX_MESSAGES messages, forgetting the oldest", () => {
  const limiter = new RepeatLimiter();
  for (let i = 0; i < LOG_REPEAT_MAX_MESSAGES * 3; i++) limiter.admit(`message ${i}`, 0);
  assert.equal(limiter.size, LOG_REPEAT_MAX_MESSAGES);
  // The newest are still counted: their next line in the window is held back at the limit.
  const key = `message ${LOG_REPEAT_MAX_MESSAGES * 3 - 1}`;
  for (let i = 1; i < LOG_REPEAT_MAX_LINES; i++) assert.ok(limiter.admit(key, 1).write);
  assert.equal(limiter.admit(key, 2).write, false);
});

Deno.test("a log on a full disk drops its lines instead of throwing at the caller", () => {
  // /dev/full fails every write with ENOSPC, as a full disk does.
  const log = new Logger({ level: "info", file: "/dev/full" });
  try {
    assert.doesNotThrow(() => {
      for (let i = 0; i < 10; i++) log.error("engine cannot write", { i });
      log.info("still serving");
    });
  } finally {
    log.close();
  }
});
