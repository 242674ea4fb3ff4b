/**
 * A region-group worker in a Web Worker of its own (`store-pool-size` ≥ 1): its body is
 * `region_worker_core.ts`. A bug the body meets is thrown uncaught in a task of its own, which
 * ends the thread; the main thread sees it as the worker's error (`region_workers.ts`).
 */
/// <reference lib="deno.worker" />
import { startRegionWorker } from "./region_worker_core.ts";
import type { ToWorker } from "./worker_protocol.ts";

const body = startRegionWorker({
  post: (message, transfer = []) => self.postMessage(message, transfer),
  die: (error) =>
    setTimeout(() => {
      throw error;
    }, 0),
});
self.onmessage = (event: MessageEvent<ToWorker>) => body.receive(event.data);
