/**
 * A region worker without a thread (`store-pool-size = 0`): the body of `region_worker_core.ts`
 * run on the main thread behind the face of a `Worker`, so that `region_workers.ts` drives both
 * forms the same way.
 *
 * Why: every message between the main thread and a worker thread wakes a sleeping thread, and
 * on a small machine that is what a write pays most for — a replicated put crosses that
 * boundary about nine times on its three stores. On 2 cores with three stores and a client on
 * one machine, the main-thread form took 20–40% less CPU per put and did 40–45% more puts at
 * 64 in flight, 13–15% more at 256 (docs/architecture.md, "Threads of a store"); a store alone
 * did as well either way. Threads pay off where there are cores to spare for them.
 *
 * What stays as with a thread:
 * - messages are structured clones with their transfer lists (a transferred buffer is detached
 *   on the sender's side), delivered in order, each direction in a microtask of its own after
 *   the post returns: nothing a side posts runs inside its `postMessage` call;
 * - a bug the body meets ends it: its error is reported through `onerror` in a task of its own,
 *   and `terminate` halts the body (`RegionWorkerBody.halt`: it takes no more work, its timers
 *   end, its engine attachment refuses every call) and drops whatever either side posts after.
 *   The main thread then starts another body, which rebuilds from disk.
 */
import { type RegionWorkerBody, startRegionWorker } from "./region_worker_core.ts";
import type { FromWorker, ToWorker } from "./worker_protocol.ts";

/** The `Worker` members `region_workers.ts` uses. */
export type WorkerFace = Pick<Worker, "postMessage" | "terminate" | "onmessage" | "onerror">;

/**
 * One direction of the inline worker's messages: delivered in order, in a microtask after the
 * post returns (the posts made before it runs share it); nothing once `closed` says so.
 */
class Mailbox<T> {
  readonly #queue: T[] = [];
  #flushQueued = false;

  constructor(
    private readonly deliver: (message: T) => void,
    private readonly closed: () => boolean,
  ) {}

  post(message: T): void {
    this.#queue.push(message);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(this.#flush);
  }

  clear(): void {
    this.#queue.length = 0;
  }

  readonly #flush = (): void => {
    this.#flushQueued = false;
    for (const message of this.#queue.splice(0)) {
      if (this.closed()) return;
      this.deliver(message);
    }
  };
}

/** A region worker's body on the main thread, with a `Worker`'s face (module header). */
export class InlineWorker implements WorkerFace {
  onmessage: ((this: Worker, event: MessageEvent) => unknown) | null = null;
  onerror: ((this: Worker, event: ErrorEvent) => unknown) | null = null;
  readonly #body: RegionWorkerBody;
  #terminated = false;
  readonly #toBody = new Mailbox<ToWorker>(
    (message) => this.#body.receive(message),
    () => this.#terminated,
  );
  // Only `data` is read (region_workers.ts): a plain object spares building a MessageEvent.
  readonly #toMain = new Mailbox<FromWorker>(
    (data) => this.onmessage?.call(this as unknown as Worker, { data } as MessageEvent<FromWorker>),
    () => this.#terminated,
  );

  constructor() {
    this.#body = startRegionWorker({
      post: (message, transfer = []) => {
        if (!this.#terminated) this.#toMain.post(structuredClone(message, { transfer }));
      },
      die: (error) =>
        setTimeout(() => {
          if (this.#terminated) return;
          const event = new ErrorEvent("error", { message: error.message, error });
          this.onerror?.call(this as unknown as Worker, event);
        }, 0),
    });
  }

  postMessage(message: ToWorker, transfer?: Transferable[] | StructuredSerializeOptions): void {
    if (this.#terminated) return;
    const options = Array.isArray(transfer) ? { transfer } : transfer;
    this.#toBody.post(structuredClone(message, options));
  }

  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#toBody.clear();
    this.#toMain.clear();
    this.#body.halt();
  }
}
