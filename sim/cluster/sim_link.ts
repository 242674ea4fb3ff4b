/**
 * The real client's links to the harness's stores (src/client's `StoreLink`, what a
 * `ConnectionPool` hands the request layers): a request is encoded with the client's codec,
 * carried to its store at the next round, decoded with the server's codec and run by the
 * store's command layer (`runCommand` over `SimStoreServices`: the handlers behind the gRPC
 * edge); the answer is encoded by the server, carried back after a delay of 0..N rounds, and
 * decoded by the client. So both sides see the wire format, and nothing of the client's
 * request loops, region cache, lock resolution or commit protocol is bypassed.
 *
 * What the network does to the client, as a real one would:
 * - a store that is down refuses the connection: `UnavailableError`, not sent;
 * - a store that crashes with requests in flight resets the connection: `UnavailableError`,
 *   sent (the request may have been applied), and an answer of the dead incarnation is never
 *   delivered;
 * - an answer may be lost while faults last (`answerLossRate`): the client waits to its
 *   deadline (`DeadlineExceededError`; the request may have been applied);
 * - every request has a deadline (its own, or the link's default) on the simulated clock.
 *
 * A handler that throws (an assertion in the store's command layer) is a store bug: it is kept
 * in `bug` for the run to fail with, and the request is answered as an internal error.
 *
 * @module
 */

import {
  ClientClosedError,
  type CommandName,
  COMMANDS,
  DeadlineExceededError,
  noTransportStats,
  type RequestOf,
  type ResponseOf,
  type SendOptions,
  ServerError,
  type StoreLink,
  type TransportStats,
  UnavailableError,
  UnsupportedError,
} from "../../src/client/mod.ts";
import type { Cluster } from "../../src/raftstore/testing/cluster.ts";
import { COMMANDS_BY_NAME } from "../../src/server/commands.ts";
import { runCommand } from "../../src/server/respond.ts";
import type { SeededRandom } from "../../src/util/random.ts";
import { ROUND_MS, type SimClock } from "./sim_clock.ts";
import { type SimTso, storeIdOfAddress } from "./sim_pd.ts";
import { SimStoreServices, type StoreGlueBugs } from "./sim_store_services.ts";

/** Deadline of a request sent without one, ms (the client always sends one). */
export const LINK_DEFAULT_TIMEOUT_MS = 20_000;
/** Most requests in flight per link (then refused unsent, as the gRPC connection does). */
export const LINK_MAX_PENDING = 256;

/** How rough the client's network is now. */
export interface LinkWeather {
  answerLossRate: number;
  maxDelayRounds: number;
}

const CALM: LinkWeather = { answerLossRate: 0, maxDelayRounds: 0 };

interface InFlight {
  storeId: bigint;
  /** The store incarnation that runs it (set when delivered). */
  services: SimStoreServices | undefined;
  cancelDeadline: () => void;
  settle: (outcome: { bytes: Uint8Array } | { error: Error }) => void;
}

interface Queued {
  id: number;
  method: string;
  bytes: Uint8Array;
}

/** Every link of the run, and the stores' command layers (module header). */
export class SimLinks {
  readonly #services = new Map<bigint, SimStoreServices>();
  readonly #inFlight = new Map<number, InFlight>();
  #queued: Queued[] = [];
  #nextId = 1;
  weather: LinkWeather = CALM;
  /** A store handler's unexpected throw: the run fails with it. */
  bug: unknown = undefined;
  readonly stats = { requests: 0, refused: 0, reset: 0, lostAnswers: 0, deadlines: 0 };

  constructor(
    readonly c: Cluster,
    readonly parts: {
      clock: SimClock;
      tso: SimTso;
      random: SeededRandom;
      bugs?: StoreGlueBugs;
    },
  ) {
    this.afterRound();
  }

  /** The link to the store at `address` (a `TransportOptions.link`). */
  link(address: string): StoreLink {
    return new SimLink(address, this);
  }

  /** Runs every request that reached its store since the last round. */
  deliver(): void {
    const queued = this.#queued;
    this.#queued = [];
    for (const q of queued) this.#run(q);
  }

  /**
   * After a round: connections to a crashed store reset; a restarted store gets a new command
   * layer; every command layer mirrors its store's regions.
   */
  afterRound(): void {
    for (const id of this.c.storeIds) {
      const known = this.#services.get(id);
      const store = this.c.isUp(id) ? this.c.store(id) : undefined;
      if (known !== undefined && known.store !== store) {
        this.#services.delete(id);
        this.#reset(known);
      }
      if (store !== undefined && !this.#services.has(id)) {
        this.#services.set(id, new SimStoreServices(store, this.parts));
      }
      this.#services.get(id)?.mirror(this.parts.tso);
    }
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Sends `bytes` to `method` of store `storeId`; resolves with the answer's bytes. */
  send(
    storeId: bigint,
    request: { method: string; bytes: Uint8Array; deadlineMs: number; what: string },
  ): Promise<Uint8Array> {
    const { clock } = this.parts;
    this.stats.requests++;
    if (!this.c.isUp(storeId)) {
      this.stats.refused++;
      const error = new UnavailableError(`${request.what}: store ${storeId} is down`, {
        sent: false,
      });
      return Promise.reject(error);
    }
    const id = this.#nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const cancelDeadline = clock.setTimer(() => {
        if (!this.#inFlight.delete(id)) return;
        this.stats.deadlines++;
        reject(new DeadlineExceededError(`${request.what}: deadline exceeded (sent)`));
      }, request.deadlineMs - clock.nowMs());
      this.#inFlight.set(id, {
        storeId,
        services: undefined,
        cancelDeadline,
        settle: (outcome) => {
          if (!this.#inFlight.delete(id)) return;
          cancelDeadline();
          if ("bytes" in outcome) resolve(outcome.bytes);
          else reject(outcome.error);
        },
      });
      this.#queued.push({ id, method: request.method, bytes: request.bytes });
    });
  }

  #run(q: Queued): void {
    const flight = this.#inFlight.get(q.id);
    if (flight === undefined) return; // Its deadline passed on the way.
    const services = this.#services.get(flight.storeId);
    if (services === undefined) {
      this.stats.reset++;
      flight.settle({ error: new UnavailableError("connection reset", { sent: true }) });
      return;
    }
    flight.services = services;
    const command = COMMANDS_BY_NAME.get(q.method);
    if (command === undefined) {
      flight.settle({ error: new ServerError(`${q.method}: UNIMPLEMENTED`) });
      return;
    }
    const request = command.requestCodec.decode(q.bytes);
    runCommand(services.services, command, request).then(
      (response) => {
        const bytes = command.responseCodec.encode(response).finish();
        this.#answer(q.id, services, bytes);
      },
      (error) => {
        this.bug ??= error;
        flight.settle({ error: new ServerError(`${q.method}: INTERNAL: ${error}`) });
      },
    );
  }

  #answer(id: number, services: SimStoreServices, bytes: Uint8Array): void {
    const flight = this.#inFlight.get(id);
    // Answered by an incarnation that crashed since: the connection was reset, nothing arrives.
    if (flight === undefined || flight.services !== services) return;
    const { random, clock } = this.parts;
    if (random.chance(this.weather.answerLossRate)) {
      this.stats.lostAnswers++;
      return; // The client waits to its deadline.
    }
    const delayMs = random.int(this.weather.maxDelayRounds + 1) * ROUND_MS;
    clock.setTimer(() => flight.settle({ bytes }), delayMs);
  }

  /** A store incarnation is gone: every request it held fails as a reset connection. */
  #reset(gone: SimStoreServices): void {
    for (const flight of [...this.#inFlight.values()]) {
      if (flight.services !== gone) continue;
      this.stats.reset++;
      flight.settle({ error: new UnavailableError("connection reset by a crash", { sent: true }) });
    }
  }
}

/** One client connection to one store. */
class SimLink implements StoreLink {
  readonly #storeId: bigint;
  #pending = 0;
  #closed = false;
  readonly #stats: TransportStats = noTransportStats();

  constructor(readonly address: string, readonly links: SimLinks) {
    this.#storeId = storeIdOfAddress(address);
  }

  get pending(): number {
    return this.#pending;
  }

  stats(): TransportStats {
    return { ...this.#stats };
  }

  close(): void {
    this.#closed = true;
  }

  send<C extends CommandName>(
    cmd: C,
    request: RequestOf<C>,
    options: SendOptions = {},
  ): Promise<ResponseOf<C>> {
    const what = `${cmd} to ${this.address}`;
    if (this.#closed) return Promise.reject(new ClientClosedError("simulated link"));
    if (this.#pending >= LINK_MAX_PENDING) {
      const message = `${what}: ${LINK_MAX_PENDING} requests pending`;
      return Promise.reject(new UnavailableError(message, { sent: false }));
    }
    const spec = COMMANDS[cmd];
    if (spec.method === null) {
      return Promise.reject(new UnsupportedError(`${cmd} exists only on BatchCommands streams`));
    }
    const clock = this.links.parts.clock;
    const deadlineMs = options.deadlineMs ??
      clock.nowMs() + (options.timeoutMs ?? LINK_DEFAULT_TIMEOUT_MS);
    if (deadlineMs <= clock.nowMs()) {
      return Promise.reject(new DeadlineExceededError(`${what}: deadline passed`));
    }
    const bytes = (spec.request.encode as (m: unknown) => { finish(): Uint8Array })(request)
      .finish();
    this.#stats.messagesSent++;
    this.#stats.unaryRequestsSent++;
    this.#pending++;
    return this.links.send(this.#storeId, { method: spec.method, bytes, deadlineMs, what })
      .finally(() => this.#pending--)
      .then((answer) => spec.response.decode(answer) as ResponseOf<C>);
  }
}
