/**
 * Disk trouble made visible and recoverable (issue #9, item 6). Every DISK_CHECK_INTERVAL_MS
 * the guard:
 * - fences writes (`RocksDbEngine.fenceWrites`, before they reach RocksDB) while the disk has
 *   less free than the reserve size, and lifts the fence once it has that much again: writes
 *   resume by themselves when space comes back. RocksDB must not meet a full disk itself:
 *   Debian's build aborts the process in its info-LOG writer after a failed write (see
 *   `fenceWrites`);
 * - probes the engine (`writeProbe`): should RocksDB meet a full disk all the same (another
 *   process filled it faster than the guard looks), it sets a background error, refuses every
 *   write, and resumes by itself once its SstFileManager (polling every 5 s) finds a write
 *   buffer free;
 * - so `/health` answers 503 with the reason while writes are refused, and the change is logged
 *   both ways (repeats are rate-limited by the logger);
 * - keeps a reserve file, `<data-dir>/space_placeholder_file` (TiKV's name and idea), of
 *   RESERVE_SPACE_WRITE_BUFFERS write buffers: removing it frees more than the fence and
 *   RocksDB's resume need. The store never removes it itself — it would only let clients fill
 *   the disk again — but its log line says so. It is created at start and again once the disk
 *   has room, never taking more than RESERVE_SPACE_MAX_SHARE_OF_FREE of the free space.
 */
import { RESERVE_SPACE_MAX_SHARE_OF_FREE } from "../constants.ts";
import type { LogFields } from "./log.ts";

/** The reserve file's name in the data directory. */
export const RESERVE_FILE_NAME = "space_placeholder_file";

/** Disk calls, injected so the guard can be tested without a full disk (`ffi/disk_space.ts`). */
export interface DiskSpace {
  availableBytes(path: string): number | null;
  allocateFile(path: string, bytes: number): string | null;
}

/** What the guard needs. */
export interface DiskGuardOptions {
  engine: { writeProbe(): string | null; fenceWrites(fenced: boolean): void };
  dataDir: string;
  /** Size of the reserve file, and the free space below which writes are fenced; 0: neither. */
  reserveBytes: number;
  disk: DiskSpace;
  log: {
    info(message: string, fields?: LogFields): void;
    error(message: string, fields?: LogFields): void;
  };
  nowMs?: () => number;
}

/** Whether the engine accepts writes, and if not, since when and why. */
export type DiskState =
  | { writable: true }
  | { writable: false; reason: string; sinceMs: number };

function fileBytes(path: string): number | null {
  try {
    return Deno.statSync(path).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Watches whether the engine can write, and keeps the reserve file. */
export class DiskGuard {
  readonly #options: DiskGuardOptions;
  readonly #nowMs: () => number;
  readonly reservePath: string;
  #state: DiskState = { writable: true };
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(options: DiskGuardOptions) {
    if (!Number.isSafeInteger(options.reserveBytes) || options.reserveBytes < 0) {
      throw new RangeError(`reserve space must be a byte count: ${options.reserveBytes}`);
    }
    this.#options = options;
    this.#nowMs = options.nowMs ?? Date.now;
    this.reservePath = `${options.dataDir}/${RESERVE_FILE_NAME}`;
  }

  get state(): DiskState {
    return this.#state;
  }

  /** Why the engine refuses writes, or null while it accepts them (for `/health`). */
  cannotWrite(): string | null {
    return this.#state.writable ? null : this.#state.reason;
  }

  /**
   * Fences writes if the disk is almost full (else lifts the fence), probes the engine, reports
   * a change, and renews the reserve when there is room.
   */
  check(): DiskState {
    const { engine, disk, dataDir, reserveBytes } = this.#options;
    const available = disk.availableBytes(dataDir);
    const low = available !== null && available < reserveBytes;
    engine.fenceWrites(low);
    const reason = low
      ? `disk almost full: ${available} bytes free, less than the ${reserveBytes} the store ` +
        `keeps free`
      : engine.writeProbe();
    const was = this.#state;
    const nowMs = this.#nowMs();
    if (reason === null) {
      this.#state = { writable: true };
      if (!was.writable) {
        this.#options.log.info("writes accepted again", { afterMs: nowMs - was.sinceMs });
      }
      this.ensureReserve();
    } else {
      this.#state = { writable: false, reason, sinceMs: was.writable ? nowMs : was.sinceMs };
      this.#options.log.error("writes refused", {
        reason,
        forMs: nowMs - this.#state.sinceMs,
        hint: this.#hint(reason),
      });
    }
    return this.#state;
  }

  #hint(reason: string): string | undefined {
    if (!/no space|nospace|almost full/i.test(reason)) return undefined;
    const reserve = fileBytes(this.reservePath);
    const free = "free disk space; writes resume by themselves";
    return reserve === null ? free : `${free}, e.g. remove ${this.reservePath} (${reserve} bytes)`;
  }

  /**
   * Creates the reserve file if it is missing and the disk has room for it (its size is not
   * checked: an operator may have shrunk it on purpose). Says what it found or did.
   */
  ensureReserve(): "none" | "exists" | "created" | "no-room" | "failed" {
    const bytes = this.#options.reserveBytes;
    if (bytes === 0) return "none";
    if (fileBytes(this.reservePath) !== null) return "exists";
    const available = this.#options.disk.availableBytes(this.#options.dataDir);
    if (available === null || bytes > available * RESERVE_SPACE_MAX_SHARE_OF_FREE) {
      return "no-room";
    }
    const failure = this.#options.disk.allocateFile(this.reservePath, bytes);
    if (failure !== null) {
      this.#options.log.error("cannot reserve disk space", { reason: failure });
      return "failed";
    }
    this.#options.log.info("reserved disk space", { path: this.reservePath, bytes });
    return "created";
  }

  /** Checks every `intervalMs` until `stop()`; the timer never keeps the process alive. */
  start(intervalMs: number): void {
    if (this.#timer !== null) throw new Error("disk guard already started");
    this.#timer = setInterval(() => this.check(), intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
