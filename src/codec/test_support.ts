/**
 * Test support for the codec. A small seeded PRNG for property tests (splitmix32-style), so a
 * failing run is reproduced by its seed: `BASALT_SEED=<seed> deno test -A src/codec`.
 *
 * @module
 */

/** A deterministic random source. */
export interface Prng {
  /** The seed this source started from. */
  readonly seed: number;
  /** Uniform integer in [0, bound). */
  below(bound: number): number;
  /** Random bytes of the given length, biased towards 0x00 and 0xFF (the codec's edge bytes). */
  bytes(length: number): Uint8Array;
  /** Uniform u64 as a bigint, biased towards small and extreme values. */
  u64(): bigint;
}

/** Creates a PRNG from `BASALT_SEED` if set, else from a fresh random seed. */
export function seededPrng(): Prng {
  const fromEnv = Deno.env.get("BASALT_SEED");
  const seed = fromEnv !== undefined ? Number(fromEnv) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  let state = seed;
  const next = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const below = (bound: number): number => next() % bound;
  return {
    seed,
    below,
    bytes(length) {
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) {
        const pick = below(4);
        out[i] = pick === 0 ? 0x00 : pick === 1 ? 0xff : below(256);
      }
      return out;
    },
    u64() {
      const high = BigInt(next());
      const low = BigInt(next());
      switch (below(4)) {
        case 0:
          return low & 0xffn;
        case 1:
          return 0xffff_ffff_ffff_ffffn - (low & 0xffn);
        default:
          return (high << 32n) | low;
      }
    },
  };
}

/** Runs `body` with a seeded PRNG; on failure the error names the seed to reproduce it. */
export function withSeed(body: (prng: Prng) => void): void {
  const prng = seededPrng();
  try {
    body(prng);
  } catch (error) {
    console.error(`property test failed; reproduce with BASALT_SEED=${prng.seed}`);
    throw error;
  }
}

/** Hex of bytes, for readable assertions. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Calls `body`, expecting a throw of `errorClass`; returns the error for further checks. */
export function catchError<E extends Error>(
  body: () => unknown,
  errorClass: new (...args: never[]) => E,
): E {
  try {
    body();
  } catch (error) {
    if (error instanceof errorClass) return error;
    throw new Error(`expected ${errorClass.name}, got ${error}`);
  }
  throw new Error(`expected ${errorClass.name}, nothing was thrown`);
}
