/**
 * Structured logging for the server: one line per event, `time level message key=value…`,
 * to standard error or to `--log-file` (appended, rotated by size to `<file>.1`).
 */
import type { LogLevel } from "./config.ts";
import { LOG_LEVELS } from "./config.ts";
import { LOG_FILE_MAX_BYTES } from "../constants.ts";

/** Fields attached to a log line. */
export type LogFields = Record<string, string | number | bigint | boolean | undefined>;

const encoder = new TextEncoder();

/** A leveled logger. */
export class Logger {
  readonly #threshold: number;
  readonly #path: string;
  #file: Deno.FsFile | null = null;
  #sizeBytes = 0;

  constructor(options: { level: LogLevel; file: string }) {
    this.#threshold = LOG_LEVELS.indexOf(options.level);
    this.#path = options.file;
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
    let line = `${new Date().toISOString()} ${level.toUpperCase()} ${message}`;
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined) line += ` ${key}=${JSON.stringify(String(value))}`;
    }
    const bytes = encoder.encode(line + "\n");
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
