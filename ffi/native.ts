/**
 * The one place that calls `Deno.dlopen`: loads librocksdb and libc once per thread (each Web
 * Worker loads its own binding of the same shared objects), and offers the small helpers every
 * binding needs: error out-parameters, length out-parameters, C strings, copying native bytes.
 *
 * RocksDB never clears `*errptr`; `ErrorSlot.check` reads and resets it after every call, so a
 * stale error can never be reported for a later call.
 */
import { requireLibrary } from "./library.ts";
import { LIBC_SYMBOLS, type LibcSymbols, ROCKSDB_SYMBOLS, type RocksDbSymbols } from "./symbols.ts";

/** RocksDB's PerfLevel::kDisable: the C API otherwise counts perf events, 15–20% on writes. */
const PERF_LEVEL_DISABLE = 1;

interface Binding {
  rocks: RocksDbSymbols;
  libc: LibcSymbols;
  path: string;
}

let binding: Binding | null = null;

function libcPath(): string {
  return Deno.build.os === "darwin" ? "libSystem.B.dylib" : "libc.so.6";
}

/** The loaded binding for this thread; loads it on first use. */
export function native(): Binding {
  if (binding !== null) return binding;
  const path = requireLibrary();
  let rocks: RocksDbSymbols;
  try {
    rocks = Deno.dlopen(path, ROCKSDB_SYMBOLS).symbols;
  } catch (error) {
    throw new Error(
      `Cannot load RocksDB from ${path}: ${(error as Error).message}. ` +
        `Basalt needs RocksDB 7.8 or newer (Debian: librocksdb7.8).`,
    );
  }
  const libc = Deno.dlopen(libcPath(), LIBC_SYMBOLS).symbols;
  rocks.rocksdb_set_perf_level(PERF_LEVEL_DISABLE);
  binding = { rocks, libc, path };
  return binding;
}

/** An error thrown when RocksDB reports a failure; `rocksdbMessage` is RocksDB's own text. */
export class RocksDbError extends Error {
  constructor(readonly operation: string, readonly rocksdbMessage: string) {
    super(`${operation}: ${rocksdbMessage}`);
    this.name = "RocksDbError";
  }
}

/**
 * A `char* errptr` out-parameter. Pass `slot.buffer` as the last argument, then `slot.check(op)`.
 * The backing store is an explicit ArrayBuffer so it never moves while a nonblocking call runs.
 */
export class ErrorSlot {
  readonly buffer = new Uint8Array(new ArrayBuffer(8));
  readonly #words = new Uint32Array(this.buffer.buffer);
  readonly #pointer = new BigUint64Array(this.buffer.buffer);

  /** Throws `RocksDbError` if the last call set an error; always leaves the slot clear. */
  check(operation: string): void {
    if (this.#words[0] === 0 && this.#words[1] === 0) return;
    const raw = this.#pointer[0]!;
    this.#pointer[0] = 0n;
    const pointer = Deno.UnsafePointer.create(raw);
    const message = pointer === null ? "unknown error" : Deno.UnsafePointerView.getCString(pointer);
    native().rocks.rocksdb_free(pointer);
    throw new RocksDbError(operation, message);
  }
}

/** A `size_t*` out-parameter; lengths under 4 GiB are read from the low word. */
export class LengthSlot {
  readonly buffer = new Uint8Array(new ArrayBuffer(8));
  readonly #words = new Uint32Array(this.buffer.buffer);

  get value(): number {
    return this.#words[0]!;
  }
}

const encoder = new TextEncoder();

/** A NUL-terminated UTF-8 copy of `text` for C. */
export function cString(text: string): Uint8Array {
  return encoder.encode(`${text}\0`);
}

/** Reads a malloc'd C string returned by RocksDB, frees it, and returns it (or null). */
export function takeCString(pointer: Deno.PointerValue): string | null {
  if (pointer === null) return null;
  const text = Deno.UnsafePointerView.getCString(pointer);
  native().rocks.rocksdb_free(pointer);
  return text;
}

/** Results up to this size are carved from a shared slab instead of allocated alone. */
const SLAB_MAX_RESULT_BYTES = 4096;
const SLAB_BYTES = 64 * 1024;
let slab = new Uint8Array(new ArrayBuffer(SLAB_BYTES));
let slabOffset = 0;

/**
 * Copies `length` native bytes at `source` into bytes the caller owns.
 *
 * `new Uint8Array(n)` costs ~0.3 µs in Deno 2.9 (measured here), more than a tenth of a RocksDB
 * get; a view carved from a 64 KiB slab costs ~0.04 µs. Small results therefore share slabs: a
 * result keeps its slab alive, which is fine for the short-lived values a server handles, and
 * callers that keep many results for long should `slice()` them.
 */
export function copyOut(source: Deno.PointerObject, length: number): Uint8Array {
  let out: Uint8Array;
  if (length > SLAB_MAX_RESULT_BYTES) {
    out = new Uint8Array(length);
  } else {
    if (slabOffset + length > SLAB_BYTES) {
      slab = new Uint8Array(new ArrayBuffer(SLAB_BYTES));
      slabOffset = 0;
    }
    out = slab.subarray(slabOffset, slabOffset + length);
    slabOffset += length;
  }
  if (length > 0) native().libc.memcpy(out, source, BigInt(length));
  return out;
}

/**
 * Bytes that must stay at one native address for as long as RocksDB holds the pointer (iterator
 * bounds). An explicit ArrayBuffer is never moved by V8's garbage collector; small typed arrays
 * made with `new Uint8Array(n)` may live on the V8 heap and move.
 */
export function pinnedCopy(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(new ArrayBuffer(bytes.length));
  copy.set(bytes);
  return copy;
}
