/**
 * Sending one request to one region, the way TiKV's `RegionRequestSender` does: resolve the
 * leader's store, send with the region's `Context`, and turn what comes back into either the
 * response or "retry" (after the cache learned what it could and the backoffer slept):
 *
 * | outcome                                   | cache                         | back-off          |
 * | ----------------------------------------- | ----------------------------- | ----------------- |
 * | NotLeader naming a known leader           | leader updated                | none (retry now)  |
 * | NotLeader without one                     | region dropped                | notLeader         |
 * | EpochNotMatch with current regions        | replaced by them              | none (retry now)  |
 * | EpochNotMatch from a store behind us      | dropped, not replaced by it   | regionMiss        |
 * | ServerIsBusy                              | kept                          | serverBusy (hint) |
 * | other typed region errors                 | see `cached_resolver.ts`      | regionMiss        |
 * | a region error with only a message        | region dropped                | surfaced at once  |
 * | store unreachable, stream broken          | store and its regions dropped | storeUnavailable  |
 *
 * A failed send that may have reached the store (`UnavailableError.sent`) is retried only for
 * idempotent requests; otherwise its error is surfaced, since the outcome is unknown. Either
 * way the caller's `onUnknownOutcome` hears of it (a transaction's commit needs to). A region
 * error carrying only a message is not something a retry fixes (Basalt answers unsupported
 * commands this way), so it is surfaced as a `RegionError`.
 *
 * "Retry" means: locate again and rebuild the request, since the key range may now span
 * several regions. The caller owns that loop (see `raw.ts`).
 */
import type { errorpb } from "../../proto/mod.ts";
import type { Backoffer } from "./backoff.ts";
import type { CommandName, RequestOf, ResponseOf } from "./commands.ts";
import { ClientError, DeadlineExceededError, RegionError, UnavailableError } from "./errors.ts";
import { contextOf, epochBehind, type RegionInfo } from "./region.ts";
import type { RegionResolver } from "./region_resolver.ts";
import type { ConnectionPool } from "./transport.ts";

/**
 * Whether a failed send may have been applied: a broken stream after the request was written,
 * or a deadline that passed while it was pending (the transport's deadline error may also be
 * of a request still queued; counted as unknown, since telling them apart is not worth a
 * wrong "not applied").
 */
function outcomeUnknown(error: unknown): error is ClientError {
  return (error instanceof UnavailableError && error.sent) ||
    error instanceof DeadlineExceededError;
}

/** The caller must locate again and retry. */
export const RETRY = Symbol("retry");

/** A request without its context (the sender adds the region's). */
export type RequestBody<C extends CommandName> = Omit<RequestOf<C>, "context">;

/** Options of one send. */
export interface RegionSendOptions {
  backoffer: Backoffer;
  /** Whether repeating the request after an unknown outcome is harmless. */
  idempotent: boolean;
  /**
   * Told of a send whose outcome is unknown — the request may have reached the store, but no
   * answer came (a stream broken after writing it, a deadline with the request pending) —
   * before the failure is retried or surfaced. A request that may decide a transaction needs
   * to know even when a retry then fails otherwise (client-go's `GetRPCError`).
   */
  onUnknownOutcome?: (error: ClientError) => void;
}

/** Sends requests to regions through a resolver and a connection pool. */
export class RegionRequestSender {
  constructor(readonly resolver: RegionResolver, readonly pool: ConnectionPool) {}

  /** Runs a lookup, retrying while PD (or the region) is unavailable. */
  async locate(
    lookup: () => Promise<RegionInfo>,
    backoffer: Backoffer,
  ): Promise<RegionInfo> {
    for (;;) {
      try {
        return await lookup();
      } catch (error) {
        if (!(error instanceof ClientError) || !error.retriable) throw error;
        await backoffer.backoff(
          error instanceof RegionError ? "regionMiss" : "pdUnavailable",
          error,
        );
      }
    }
  }

  /** Sends `cmd` to `region`'s leader once; `RETRY` when the caller must locate again. */
  async send<C extends CommandName>(
    cmd: C,
    region: RegionInfo,
    body: RequestBody<C>,
    options: RegionSendOptions,
  ): Promise<ResponseOf<C> | typeof RETRY> {
    const { backoffer } = options;
    const storeId = region.leader.storeId;
    let response: ResponseOf<C>;
    let sending = false;
    try {
      const address = await this.resolver.storeAddress(storeId, backoffer);
      const request = { ...body, context: contextOf(region) } as RequestOf<C>;
      sending = true;
      response = await this.pool.get(address).send(cmd, request, {
        deadlineMs: backoffer.deadlineMs,
      });
    } catch (error) {
      if (sending && outcomeUnknown(error)) options.onUnknownOutcome?.(error);
      if (!(error instanceof UnavailableError)) throw error;
      if (error.sent && !options.idempotent) throw error;
      this.resolver.invalidateStore(storeId);
      await backoffer.backoff("storeUnavailable", error);
      return RETRY;
    }
    const regionError = (response as { regionError?: errorpb.Error.$Properties | null })
      .regionError;
    if (regionError == null) return response;
    await this.#onRegionError(region, regionError, backoffer);
    return RETRY;
  }

  #onRegionError(
    region: RegionInfo,
    error: errorpb.Error.$Properties,
    backoffer: Backoffer,
  ): Promise<void> {
    this.resolver.onRegionError(region, error);
    const cause = new RegionError(error);
    if (error.notLeader != null) {
      const leaderKnown = (error.notLeader.leader?.id ?? 0n) !== 0n;
      return leaderKnown ? backoffer.retryNow(cause) : backoffer.backoff("notLeader", cause);
    }
    if (error.epochNotMatch != null) {
      const current = error.epochNotMatch.currentRegions ?? [];
      const storeBehind = current.some((proto) => epochBehind(proto, region));
      return current.length > 0 && !storeBehind
        ? backoffer.retryNow(cause)
        : backoffer.backoff("regionMiss", cause);
    }
    if (error.serverIsBusy != null) {
      return backoffer.backoff("serverBusy", cause, Number(error.serverIsBusy.backoffMs ?? 0n));
    }
    const typed = Object.entries(error).some(([field, value]) =>
      field !== "message" && !field.startsWith("$") && value != null && typeof value === "object"
    );
    if (!typed) return Promise.reject(cause);
    return backoffer.backoff("regionMiss", cause);
  }
}
