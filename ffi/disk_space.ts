/**
 * Disk space through libc, which Deno does not offer: the bytes a filesystem has free for an
 * unprivileged writer (`statvfs`), and a file whose blocks are really allocated
 * (`posix_fallocate`) — a sparse file from `truncate` would reserve nothing.
 *
 * Linux only: `struct statvfs` differs elsewhere, so other systems report `null` (unknown) and
 * reserve nothing.
 */
import { cString, native } from "./native.ts";

/** `struct statvfs` on 64-bit Linux (glibc): 112 bytes; f_frsize at 8, f_bavail at 32. */
const STATVFS_BYTES = 112;
const FRSIZE_OFFSET = 8;
const BLOCKS_OFFSET = 16;
const BAVAIL_OFFSET = 32;
/** open(2) flags on Linux. */
const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_CLOEXEC = 0o2000000;
const FILE_MODE = 0o644;

const linux = () => Deno.build.os === "linux";

/** Bytes free for an unprivileged writer on the filesystem holding `path`, or null if unknown. */
export function availableBytes(path: string): number | null {
  const statvfs = native().libc.statvfs;
  if (!linux() || statvfs === null) return null;
  const buffer = new Uint8Array(new ArrayBuffer(STATVFS_BYTES));
  if (statvfs(cString(path), buffer) !== 0) return null;
  const view = new DataView(buffer.buffer);
  const blockBytes = view.getBigUint64(FRSIZE_OFFSET, true);
  const blocks = view.getBigUint64(BAVAIL_OFFSET, true);
  return Number(blockBytes * blocks);
}

/** Size in bytes of the filesystem holding `path` (`f_blocks`), or null if unknown. */
export function capacityBytes(path: string): number | null {
  const statvfs = native().libc.statvfs;
  if (!linux() || statvfs === null) return null;
  const buffer = new Uint8Array(new ArrayBuffer(STATVFS_BYTES));
  if (statvfs(cString(path), buffer) !== 0) return null;
  const view = new DataView(buffer.buffer);
  return Number(view.getBigUint64(FRSIZE_OFFSET, true) * view.getBigUint64(BLOCKS_OFFSET, true));
}

/**
 * Creates `path` with `bytes` allocated on disk. Returns null on success, else why not (the
 * file is removed again: half a reserve would only mislead).
 */
export function allocateFile(path: string, bytes: number): string | null {
  const { open, close, posix_fallocate: fallocate } = native().libc;
  if (!linux() || fallocate === null) return "reserving disk space is supported on Linux only";
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new RangeError(`allocate ${bytes} bytes`);
  const fd = open(cString(path), O_WRONLY | O_CREAT | O_CLOEXEC, FILE_MODE);
  if (fd < 0) return `cannot create ${path}`;
  const code = fallocate(fd, 0n, BigInt(bytes));
  close(fd);
  if (code === 0) return null;
  try {
    Deno.removeSync(path);
  } catch { /* already gone */ }
  return `cannot allocate ${bytes} bytes for ${path} (errno ${code})`;
}
