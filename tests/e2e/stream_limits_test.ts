/**
 * Flow control of BatchCommands (src/server/flow_control.ts), end to end: a client that keeps
 * sending and never reads its answers costs the store at most its caps, and the memory comes
 * back when the client leaves.
 *
 * The never-reading client (`h2_never_reading_client.ts`) speaks raw HTTP/2: it sends as fast
 * as the store grants window and never grants any back, so every answer past the first 64 KiB
 * must be held by the store — or, with flow control working, never computed.
 * Memory is the store's resident set (`basalt_process_resident_memory_bytes` on /metrics).
 */
import assert from "node:assert/strict";
import { kvrpcpb, tikvpb } from "../../proto/mod.ts";
import {
  CONNECTION_MAX_PENDING_REQUESTS,
  STREAM_MAX_PENDING_REQUESTS,
  STREAM_MAX_UNSENT_BYTES,
} from "../../src/constants.ts";
import { utf8 } from "../../src/util/bytes.ts";
import { NeverReadingClient } from "./h2_never_reading_client.ts";
import { TikvClient, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const context = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
const VALUE_BYTES = 4 * 1024;
const GETS_PER_MESSAGE = 64;
/** 1600 messages × 64 gets × 4 KiB: 400 MiB of answers if nothing held the client back. */
const MESSAGES = 1600;
const UNCAPPED_ANSWER_BYTES = MESSAGES * GETS_PER_MESSAGE * VALUE_BYTES;
/**
 * What the caps allow the store to hold for one stream: its outstanding sub-requests (the cap
 * plus the message that reached it) each answered with one value, and the unsent-bytes cap.
 */
const CAPPED_ANSWER_BYTES = (STREAM_MAX_PENDING_REQUESTS + GETS_PER_MESSAGE) * VALUE_BYTES +
  STREAM_MAX_UNSENT_BYTES;
/**
 * RSS growth allowed while the client is stalled: the caps' bytes three times over (an answer
 * exists in its worker, in the main thread and in gRPC's framing) and 64 MiB of allocator slack.
 */
const ALLOWED_GROWTH_BYTES = 3 * CAPPED_ANSWER_BYTES + 64 * 1024 * 1024;
/** Messages a reading client sends first, so the baseline includes warmed-up heaps. */
const WARM_UP_MESSAGES = 200;
const WAIT_MS = 30_000;

async function metrics(statusAddr: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${statusAddr}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(basalt_[a-z_]+) (\d+)$/.exec(line);
    if (match !== null) values.set(match[1]!, Number(match[2]));
  }
  return values;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null>,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

Deno.test({
  name: "e2e: a BatchCommands client that sends and never reads costs the store at most its " +
    "caps, and the memory comes back when it leaves",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const seed = new TikvClient(server.grpcAddr);
      const put = kvrpcpb.RawPutResponse.decode(
        await seed.callBytes(
          "RawPut",
          kvrpcpb.RawPutRequest.encode({
            context,
            key: utf8("big"),
            value: new Uint8Array(VALUE_BYTES).fill(7),
          }).finish(),
        ),
      );
      assert.equal(put.error, "");
      const warm = seed.batchCommands();
      for (let i = 0; i < WARM_UP_MESSAGES; i++) {
        await warm.send({
          requests: Array.from(
            { length: GETS_PER_MESSAGE },
            () => ({ RawGet: { context, key: utf8("big") } }),
          ),
          requestIds: Array.from({ length: GETS_PER_MESSAGE }, (_, n) => BigInt(i * 100 + n + 1)),
        });
      }
      warm.close();
      seed.close();
      const before = await metrics(server.statusAddr);
      const rssBefore = before.get("basalt_process_resident_memory_bytes")!;

      const client = await NeverReadingClient.open(server.grpcAddr, "/tikvpb.Tikv/BatchCommands");
      const message = tikvpb.BatchCommandsRequest.encode({
        requests: Array.from(
          { length: GETS_PER_MESSAGE },
          () => ({ RawGet: { context, key: utf8("big") } }),
        ),
        requestIds: Array.from({ length: GETS_PER_MESSAGE }, (_, i) => BigInt(i + 1)),
      }).finish();
      const sending = client.send(message, MESSAGES, 3_000);

      // The store pauses the stream, and what it holds stops growing.
      let peakRss = 0;
      let stalled: Map<string, number> | null = null;
      let last = "";
      await waitFor("the stream to stall at its caps", async () => {
        const now = await metrics(server.statusAddr);
        peakRss = Math.max(peakRss, now.get("basalt_process_resident_memory_bytes")!);
        const held = `${now.get("basalt_grpc_stream_pending_requests")}/` +
          `${now.get("basalt_grpc_stream_unsent_bytes")}`;
        const settled = (now.get("basalt_grpc_stream_pauses_total") ?? 0) >= 1 && held === last;
        last = held;
        if (settled) stalled = now;
        return settled ? now : null;
      });
      for (let i = 0; i < 5; i++) { // a few more samples of the stalled store
        await new Promise((resolve) => setTimeout(resolve, 300));
        const now = await metrics(server.statusAddr);
        peakRss = Math.max(peakRss, now.get("basalt_process_resident_memory_bytes")!);
      }
      const sent = await sending; // the store stopped granting window: the client is stuck
      assert.ok(sent < MESSAGES, `the store took all ${MESSAGES} messages of a stalled client`);
      assert.ok(client.receivedDataBytes <= 65_535 + 16_384, `${client.receivedDataBytes} B`);
      const held = stalled!;
      const pending = held.get("basalt_grpc_stream_pending_requests")!;
      const unsent = held.get("basalt_grpc_stream_unsent_bytes")!;
      console.log(
        `never-reading client: ${sent} of ${MESSAGES} messages ` +
          `(${mib(UNCAPPED_ANSWER_BYTES)} of answers) taken before the store stopped reading; ` +
          `store holds ${pending} sub-requests and ${mib(unsent)} unsent; RSS before ` +
          `${mib(rssBefore)}, peak while stalled ${mib(peakRss)} (+${mib(peakRss - rssBefore)}, ` +
          `allowed +${mib(ALLOWED_GROWTH_BYTES)})`,
      );
      assert.ok(pending <= STREAM_MAX_PENDING_REQUESTS + GETS_PER_MESSAGE, `${pending} pending`);
      assert.ok(pending <= CONNECTION_MAX_PENDING_REQUESTS);
      assert.ok(unsent <= CAPPED_ANSWER_BYTES, `${unsent} bytes unsent`);
      assert.ok(
        peakRss - rssBefore <= ALLOWED_GROWTH_BYTES,
        `RSS grew by ${mib(peakRss - rssBefore)} for a client that never reads`,
      );

      // The client leaves: its pending work is dropped and the store's counts go back to zero.
      client.close();
      const after = await waitFor("the store to drop the client's work", async () => {
        const now = await metrics(server.statusAddr);
        return now.get("basalt_grpc_stream_pending_requests") === 0 &&
            now.get("basalt_grpc_stream_unsent_bytes") === 0 &&
            now.get("basalt_grpc_connections") === 0
          ? now
          : null;
      });
      // V8 and malloc give memory back lazily: wait (bounded) for the resident set to fall.
      const rssAfter = await waitFor("the store's memory to come back", async () => {
        const rss = (await metrics(server.statusAddr)).get("basalt_process_resident_memory_bytes")!;
        return rss - rssBefore <= (peakRss - rssBefore) / 2 + 16 * 1024 * 1024 ? rss : null;
      }, 20_000).catch(() => after.get("basalt_process_resident_memory_bytes")!);
      console.log(`after the client left: RSS ${mib(rssAfter)} (before ${mib(rssBefore)})`);
      assert.ok(
        rssAfter - rssBefore <= ALLOWED_GROWTH_BYTES / 2,
        `RSS still ${mib(rssAfter - rssBefore)} above its start after the client left`,
      );

      // And the store serves the next client as before.
      const next = new TikvClient(server.grpcAddr);
      const batch = next.batchCommands();
      const answer = await batch.send({
        requests: [{ RawGet: { context, key: utf8("big") } }],
        requestIds: [1n],
      });
      assert.equal(answer.responses[0]!.RawGet!.value!.length, VALUE_BYTES);
      batch.close();
      next.close();
    }),
});
