/**
 * CRC-64/XZ (also called CRC-64/GO-ECMA): reflected polynomial 0xC96C5795D7870F42, initial value
 * and final XOR all ones. TiKV's raw checksum (`Crc64_Xor`) uses it. Table-driven, one byte at a
 * time, with the 64-bit state held as two 32-bit halves so no BigInt arithmetic runs per byte.
 */

const POLY_HIGH = 0xc96c5795;
const POLY_LOW = 0xd7870f42;

function buildTables(): { high: Uint32Array; low: Uint32Array } {
  const high = new Uint32Array(256);
  const low = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let h = 0;
    let l = n;
    for (let bit = 0; bit < 8; bit++) {
      const carry = l & 1;
      l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
      h = h >>> 1;
      if (carry) {
        h = (h ^ POLY_HIGH) >>> 0;
        l = (l ^ POLY_LOW) >>> 0;
      }
    }
    high[n] = h;
    low[n] = l;
  }
  return { high, low };
}

const TABLES = buildTables();

/** An incremental CRC-64/XZ digest: `update` any number of times, then `sum`. */
export class Crc64Digest {
  #high = 0xffffffff;
  #low = 0xffffffff;

  update(bytes: Uint8Array): this {
    let h = this.#high;
    let l = this.#low;
    const { high, low } = TABLES;
    for (let i = 0; i < bytes.length; i++) {
      const index = (l ^ bytes[i]!) & 0xff;
      l = (((l >>> 8) | ((h & 0xff) << 24)) ^ low[index]!) >>> 0;
      h = ((h >>> 8) ^ high[index]!) >>> 0;
    }
    this.#high = h;
    this.#low = l;
    return this;
  }

  /** The checksum of everything given so far. */
  sum(): bigint {
    return (BigInt((this.#high ^ 0xffffffff) >>> 0) << 32n) |
      BigInt((this.#low ^ 0xffffffff) >>> 0);
  }
}

/** CRC-64/XZ of the concatenation of `parts`. */
export function crc64(...parts: Uint8Array[]): bigint {
  const digest = new Crc64Digest();
  for (const part of parts) digest.update(part);
  return digest.sum();
}
