/**
 * Small durable record files: a few string fields, replaced atomically, checked on every read.
 *
 * On disk, two lines: the record as one JSON object (with its `format` and `version`), then
 * `crc32 <8 hex digits>` of the first line's bytes. For example:
 *
 * ```
 * {"format":"basalt-tso","version":1,"boundMs":"1700000003000"}
 * crc32 5e1c9a07
 * ```
 *
 * Writing: the new content goes to `<file>.tmp`, which is fsynced, renamed over `<file>`, and the
 * directory is fsynced, so after a crash the file holds either the old record or the new one.
 * Reading: a missing file is `null`; anything else that is not exactly a record of the expected
 * format with a matching checksum — empty, truncated, torn, edited, another format — throws
 * `CorruptFileError` naming the file. A damaged file is never read as "nothing saved": the
 * allocators built on these files would reissue timestamps or ids.
 *
 * @module
 */
import { crc32 } from "node:zlib";

/** A record file exists but cannot be trusted; `path` names it and `reason` says why. */
export class CorruptFileError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(
      `${path} is corrupt (${reason}); refusing to use it. Restore it from a backup, or ` +
        `remove the data directory to start a new cluster`,
    );
    this.name = "CorruptFileError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const CHECKSUM_LINE = /^crc32 ([0-9a-f]{8})$/;

function checksumOf(line: string): string {
  return crc32(encoder.encode(line)).toString(16).padStart(8, "0");
}

function directoryOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? (slash === 0 ? "/" : ".") : path.slice(0, slash);
}

/** Flushes a directory's entries (a rename in it) to disk. */
export function syncDirectory(path: string): void {
  const directory = Deno.openSync(path, { read: true });
  try {
    directory.syncSync();
  } finally {
    directory.close();
  }
}

/**
 * Atomically replaces `path` with a record of `format` holding `fields`, durably: returns only
 * once the new record survives a crash.
 */
export function writeRecordFile(
  path: string,
  record: { format: string; fields: Record<string, string> },
): void {
  const line = JSON.stringify({ format: record.format, version: 1, ...record.fields });
  const content = encoder.encode(`${line}\ncrc32 ${checksumOf(line)}\n`);
  const temporary = `${path}.tmp`;
  const file = Deno.openSync(temporary, { write: true, create: true, truncate: true });
  try {
    let written = 0;
    while (written < content.length) written += file.writeSync(content.subarray(written));
    file.syncSync();
  } finally {
    file.close();
  }
  Deno.renameSync(temporary, path);
  syncDirectory(directoryOf(path));
}

function readBytes(path: string): Uint8Array | null {
  try {
    return Deno.readFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Reads the record of `format` at `path`: its fields without `format` and `version`, or `null`
 * when the file does not exist. Throws `CorruptFileError` for any damaged content.
 */
export function readRecordFile(path: string, format: string): Record<string, string> | null {
  const bytes = readBytes(path);
  if (bytes === null) return null;
  const corrupt = (reason: string) => new CorruptFileError(path, reason);
  if (bytes.length === 0) throw corrupt("empty file");
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw corrupt("not UTF-8 text");
  }
  const lines = text.split("\n");
  if (lines.length !== 3 || lines[2] !== "") {
    throw corrupt(`expected 2 lines ending in a newline, found ${text.length} bytes`);
  }
  const [line, checksumLine] = lines as [string, string, string];
  const match = CHECKSUM_LINE.exec(checksumLine);
  if (match === null) throw corrupt("no checksum line (truncated?)");
  if (match[1] !== checksumOf(line)) throw corrupt("checksum mismatch");
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw corrupt("record is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw corrupt("record is not a JSON object");
  }
  const { format: found, version, ...fields } = parsed as Record<string, unknown>;
  if (found !== format) throw corrupt(`format is ${JSON.stringify(found)}, expected "${format}"`);
  if (version !== 1) throw corrupt(`unsupported version ${JSON.stringify(version)}`);
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== "string") throw corrupt(`field ${name} is not a string`);
  }
  return fields as Record<string, string>;
}

/** Parses a u64 written in decimal; throws `CorruptFileError` naming `path` otherwise. */
export function parseU64Field(path: string, fields: Record<string, string>, name: string): bigint {
  const text = fields[name];
  if (text === undefined) throw new CorruptFileError(path, `field ${name} is missing`);
  if (!/^(0|[1-9][0-9]{0,19})$/.test(text)) {
    throw new CorruptFileError(path, `field ${name} is not a decimal u64: ${JSON.stringify(text)}`);
  }
  const value = BigInt(text);
  if (value >= 1n << 64n) throw new CorruptFileError(path, `field ${name} exceeds a u64: ${text}`);
  return value;
}
