/**
 * The GC safe point and the service safe points that hold it back (PD's `pkg/gc/safepoint.go`
 * and `LoadMinServiceGCSafePoint`), over `PdStorage`, with time from the caller (Unix seconds).
 *
 * Rules (each tested in `safe_point_test.ts`):
 * 1. The GC safe point never goes back: an update below it answers the current one.
 * 2. A service safe point (BR, CDC, a GC worker…) lives until its TTL runs out; TTL <= 0
 *    removes it. A new one below the minimum of those alive is refused (the answer names the
 *    minimum), as in PD: it would protect versions already allowed to go.
 * 3. Service safe points bound the GC safe point: an update asking past the smallest live
 *    service safe point stops at it. PD trusts TiDB's GC worker to have done that itself;
 *    Basalt enforces it, as PD's newer GC barriers do. The GC worker's own entry
 *    (`gc_worker`) is not a bound: it is the one moving the GC safe point.
 * 4. As PD does, the minimum is never empty: when no service safe point is alive, `gc_worker`
 *    is created at 0 with no expiry (or at the smallest of the others when only it is missing).
 *
 * @module
 */
import { PD_SERVICE_ID_MAX_BYTES, PD_SERVICE_SAFE_POINTS_MAX } from "../constants.ts";
import { toHex, utf8 } from "../util/bytes.ts";
import { assert } from "../util/assert.ts";
import { PdError } from "./errors.ts";
import {
  decodeServiceSafePoint,
  encodeServiceSafePoint,
  type ServiceSafePoint,
} from "./records.ts";
import { loadU64, PD_KEYS, type PdStorage, putU64 } from "./storage.ts";

export type { ServiceSafePoint };

/** The service id of TiDB's GC worker (PD's `gcWorkerServiceSafePointID`). */
export const GC_WORKER_SERVICE_ID = "gc_worker";

/** The answer to UpdateServiceGCSafePoint: the smallest live service safe point. */
export interface MinServiceSafePoint {
  serviceId: string;
  /** Seconds until it expires (PD answers `expiredAt - now`); `null` for never. */
  ttlSec: number | null;
  minSafePoint: bigint;
  /** Whether the request's safe point was saved. */
  updated: boolean;
}

function serviceKey(serviceId: string): string {
  return PD_KEYS.servicePrefix + toHex(utf8(serviceId));
}

function alive(point: ServiceSafePoint, nowSec: number): boolean {
  return point.expiredAtSec === null || point.expiredAtSec >= nowSec;
}

/** The GC safe point and the service safe points, persisted. */
export class SafePoints {
  readonly #storage: PdStorage;
  #gcSafePoint: bigint;
  readonly #services = new Map<string, ServiceSafePoint>();

  private constructor(storage: PdStorage, gcSafePoint: bigint) {
    this.#storage = storage;
    this.#gcSafePoint = gcSafePoint;
  }

  /** Loads both from storage; throws naming a corrupt record. */
  static open(storage: PdStorage): SafePoints {
    const points = new SafePoints(storage, loadU64(storage, PD_KEYS.gcSafePoint) ?? 0n);
    for (const [key, text] of storage.scan(PD_KEYS.servicePrefix)) {
      const point = decodeServiceSafePoint(key, text);
      points.#services.set(point.serviceId, point);
    }
    return points;
  }

  /** The GC safe point. */
  get gcSafePoint(): bigint {
    return this.#gcSafePoint;
  }

  /** The service safe points held now, expired ones included until the next update drops them. */
  get services(): ServiceSafePoint[] {
    return [...this.#services.values()];
  }

  /**
   * Moves the GC safe point towards `candidate`, never back and never past the smallest live
   * service safe point but `gc_worker`'s; returns the safe point in force afterwards.
   */
  updateGcSafePoint(candidate: bigint, nowSec: number): bigint {
    let target = candidate;
    for (const point of this.#services.values()) {
      if (point.serviceId === GC_WORKER_SERVICE_ID || !alive(point, nowSec)) continue;
      if (point.safePoint < target) target = point.safePoint;
    }
    if (target > this.#gcSafePoint) {
      this.#storage.write([putU64(PD_KEYS.gcSafePoint, target)]);
      this.#gcSafePoint = target;
    }
    return this.#gcSafePoint;
  }

  /**
   * PD's UpdateServiceGCSafePoint: `ttlSec <= 0` removes the service's safe point; otherwise
   * it is saved unless it lies below the current minimum. Answers the minimum afterwards.
   */
  updateServiceSafePoint(
    request: { serviceId: string; ttlSec: number; safePoint: bigint; nowSec: number },
  ): MinServiceSafePoint | PdError {
    const { serviceId, ttlSec, safePoint, nowSec } = request;
    if (serviceId.length === 0 || utf8(serviceId).length > PD_SERVICE_ID_MAX_BYTES) {
      return new PdError(
        "InvalidRequest",
        `service id must have 1 to ${PD_SERVICE_ID_MAX_BYTES} bytes: "${serviceId.slice(0, 64)}"`,
      );
    }
    if (ttlSec <= 0 && this.#services.delete(serviceId)) {
      this.#storage.write([{ kind: "delete", key: serviceKey(serviceId) }]);
    }
    let min = this.#loadMin(nowSec);
    if (ttlSec <= 0 || safePoint < min.safePoint) return this.#answer(min, nowSec, false);
    if (!this.#services.has(serviceId) && this.#services.size >= PD_SERVICE_SAFE_POINTS_MAX) {
      return new PdError(
        "LimitExceeded",
        `at most ${PD_SERVICE_SAFE_POINTS_MAX} service safe points; "${serviceId}" is one more`,
      );
    }
    const expiredAtSec = Number.isSafeInteger(nowSec + ttlSec) ? nowSec + ttlSec : null;
    this.#save({ serviceId, expiredAtSec, safePoint });
    if (min.serviceId === serviceId) min = this.#loadMin(nowSec);
    return this.#answer(min, nowSec, true);
  }

  #answer(min: ServiceSafePoint, nowSec: number, updated: boolean): MinServiceSafePoint {
    const ttlSec = min.expiredAtSec === null ? null : min.expiredAtSec - nowSec;
    return { serviceId: min.serviceId, ttlSec, minSafePoint: min.safePoint, updated };
  }

  #save(point: ServiceSafePoint): void {
    this.#storage.write([{
      kind: "put",
      key: serviceKey(point.serviceId),
      value: encodeServiceSafePoint(point),
    }]);
    this.#services.set(point.serviceId, point);
  }

  /** Drops expired service safe points and returns the smallest live one (rule 4). */
  #loadMin(nowSec: number): ServiceSafePoint {
    let min: ServiceSafePoint | null = null;
    let smallestEver: bigint | null = null;
    for (const point of [...this.#services.values()]) {
      if (smallestEver === null || point.safePoint < smallestEver) smallestEver = point.safePoint;
      if (!alive(point, nowSec)) {
        this.#services.delete(point.serviceId);
        this.#storage.write([{ kind: "delete", key: serviceKey(point.serviceId) }]);
        continue;
      }
      if (min === null || point.safePoint < min.safePoint) min = point;
    }
    if (min === null || !this.#services.has(GC_WORKER_SERVICE_ID)) {
      const start = min === null ? 0n : (smallestEver ?? 0n);
      const worker = { serviceId: GC_WORKER_SERVICE_ID, expiredAtSec: null, safePoint: start };
      this.#save(worker);
      if (min === null || worker.safePoint < min.safePoint) min = worker;
    }
    assert(alive(min, nowSec), `minimum service safe point "${min.serviceId}" has expired`);
    return min;
  }
}
