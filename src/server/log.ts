/**
 * Structured logging for the server: one line per event, `time level message key=value…`,
 * to standard error or to `--log-file` (appended, rotated by size to `<file>.1`).
 *
 * Repeated warnings and errors are written at a bounded rate: at most LOG_REPEAT_MAX_LINES
 * lines of one level and message per LOG_REPEAT_WINDOW_MS; the next line written after a
 * window carries `suppressed=N`, the number held back. A full disk fails every write at once,
 * and the log must not become the next thing to fill it.
 *
 * A line that cannot be written (the log's own disk is full) is dropped, never thrown at the
 * caller: the next line written carries `dropped=N`.
 */
import type { LogLevel } from "./config.ts";
import { LOG_LEVELS } from "./config.ts";
import {
  LOG_FILE_MAX_BYTES,
  LOG_REPEAT_MAX_LINES,
  LOG_REPEAT_MAX_MESSAGES,
  LOG_REPEAT_WINDOW_MS,
} from "../constants.ts";

/** Fields attached to a log line. */
export type LogFields = Record<string, string | number | bigint | boolean | undefined>;

const encoder = new TextEncoder();

/** One message's lines in its current window. */
interface Repeats {
  windowStartMs: number;
  lines: number;
  suppressed: number;
}

/**
 * Decides which repeated lines are written (see the module header). Keyed by level and message;
 * at most LOG_REPEAT_MAX_MESSAGES are tracked, the least recently renewed forgotten first.
 */
export class RepeatLimiter {
  readonly #messages = new Map<string, Repeats>();

  /** Whether to write this line; when it is written, how many before it were suppressed. */
  admit(key: string, nowMs: number): { write: boolean; suppressed: number } {
    let entry = this.#messages.get(key);
    let suppressed = 0;
    if (entry === undefined || nowMs - entry.windowStartMs >= LOG_REPEAT_WINDOW_MS) {
      suppressed = entry?.suppressed ?? 0;
      this.#messages.delete(key); // re-inserted last: the Map's order is renewal order
      entry = { windowStartMs: nowMs, lines: 0, suppressed: 0 };
      this.#messages.set(key, entry);
      if (this.#messages.size > LOG_REPEAT_MAX_MESSAGES) {
        this.#messages.delete(this.#messages.keys().next().value!);
      }
    }
    if (entry.lines >= LOG_REPEAT_MAX_LINES) {
      entry.suppressed++;
      return { write: false, suppressed: 0 };
    }
    entry.lines++;
    return { write: true, suppressed };
  }

  /** Messages tracked now (at most LOG_REPEAT_MAX_MESSAGES). */
  get size(): number {
    return this.#messages.size;
  }
}

/** A leveled logger. */
export class Logger {
  readonly #threshold: number;
  readonly #path: string;
  readonly #nowMs: () => number;
  readonly #repeats = new RepeatLimiter();
  #file: Deno.FsFile | null = null;
  #sizeBytes = 0;
  #dropped = 0;

  /** `nowMs` is for tests; it defaults to the wall clock. */
  constructor(options: { level: LogLevel; file: string; nowMs?: () => number }) {
    this.#threshold = LOG_LEVELS.indexOf(options.level);
    this.#path = options.file;
    this.#nowMs = options.nowMs ?? Date.now;
    if (this.#path !== "") this.#openFile();
  }

  #openFile(): void {
    this.#file = Deno.openSync(this.#path, { append: true, create: true });
    this.#sizeBytes = this.#file.statSync().size;
  }

  #rotate(): void {
    this.#file?.close();
    Deno.renameSync(this.#path, `${this.#path}.1`);
    this.#openFile();
  }

  #write(level: LogLevel, message: string, fields: LogFields): void {
    if (LOG_LEVELS.indexOf(level) < this.#threshold) return;
    const nowMs = this.#nowMs();
    let suppressed = 0;
    if (level === "warn" || level === "error") {
      const admitted = this.#repeats.admit(`${level} ${message}`, nowMs);
      if (!admitted.write) return;
      suppressed = admitted.suppressed;
    }
    let line = `${new Date(nowMs).toISOString()} ${level.toUpperCase()} ${message}`;
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined) line += ` ${key}=${JSON.stringify(String(value))}`;
    }
    if (suppressed > 0) line += ` suppressed="${suppressed}"`;
    if (this.#dropped > 0) line += ` dropped="${this.#dropped}"`;
    try {
      this.#append(encoder.encode(line + "\n"));
      this.#dropped = 0;
    } catch {
      this.#dropped++; // the log's disk is full or gone: logging must not fail the caller
    }
  }

  #append(bytes: Uint8Array): void {
    if (this.#file === null) {
      Deno.stderr.writeSync(bytes);
      return;
    }
    if (this.#sizeBytes + bytes.length > LOG_FILE_MAX_BYTES) this.#rotate();
    this.#file!.writeSync(bytes);
    this.#sizeBytes += bytes.length;
  }

  debug(message: string, fields: LogFields = {}): void {
    this.#write("debug", message, fields);
  }
  info(message: string, fields: LogFields = {}): void {
    this.#write("info", message, fields);
  }
  warn(message: string, fields: LogFields = {}): void {
    this.#write("warn", message, fields);
  }
  error(message: string, fields: LogFields = {}): void {
    this.#write("error", message, fields);
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

/**
 * A process's logger, or null after saying in one line (`name: …` on standard error) why its
 * log file cannot be opened (a missing directory, no permission): the process then exits 2.
 */
export function openProcessLog(
  name: string,
  options: { level: LogLevel; file: string },
): Logger | null {
  try {
    return new Logger(options);
  } catch (error) {
    console.error(`${name}: cannot open the log file ${options.file}: ${(error as Error).message}`);
    return null;
  }
}
