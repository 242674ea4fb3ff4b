/**
 * `firstUserKeyAtOrAfter` against its definition — the smallest user key whose memcomparable
 * encoding sorts at or after a bound — checked by brute force over every short key of a small
 * alphabet, for valid encoded bounds and for arbitrary bytes (raw split keys).
 */
import assert from "node:assert/strict";
import { encodeKey } from "../../codec/key.ts";
import { compareBytes, utf8 } from "../../util/bytes.ts";
import { SeededRandom } from "../../util/random.ts";
import { firstUserKeyAtOrAfter } from "./region_keys.ts";

/** Every key of length 0..maxLength over `alphabet`, in byte order. */
function allKeys(alphabet: number[], maxLength: number): Uint8Array[] {
  const keys: Uint8Array[] = [new Uint8Array(0)];
  let frontier: number[][] = [[]];
  for (let length = 1; length <= maxLength; length++) {
    frontier = frontier.flatMap((prefix) => alphabet.map((byte) => [...prefix, byte]));
    keys.push(...frontier.map((key) => Uint8Array.from(key)));
  }
  return keys.sort(compareBytes);
}

/**
 * The definition over `keys` (sorted; `encoded` their encodings, in the same order since the
 * encoding keeps order): the first key encoded at or after `bound`, null when none is.
 */
function bruteForce(
  keys: Uint8Array[],
  encoded: Uint8Array[],
  bound: Uint8Array,
): Uint8Array | null {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (compareBytes(encoded[mid]!, bound) >= 0) high = mid;
    else low = mid + 1;
  }
  return keys[low] ?? null;
}

Deno.test("firstUserKeyAtOrAfter decodes a valid encoded key", () => {
  for (const text of ["", "m", "abcdefgh", "abcdefghi", "a\0\0", "\0\0\0\0\0\0\0\0"]) {
    assert.deepEqual(firstUserKeyAtOrAfter(encodeKey(utf8(text))), utf8(text));
  }
});

Deno.test("firstUserKeyAtOrAfter of a raw split key is the first user key encoded after it", () => {
  // encode("m") = "m" 0*7 0xf8 sorts after the raw key "m"; encode("l\xff…") before it.
  assert.deepEqual(firstUserKeyAtOrAfter(utf8("m")), utf8("m"));
  assert.deepEqual(firstUserKeyAtOrAfter(new Uint8Array(0)), new Uint8Array(0));
});

Deno.test("firstUserKeyAtOrAfter matches a brute-force search for arbitrary bounds", () => {
  // Alphabet with zero (padding) and 0xff (the continue marker) to reach every branch; keys up
  // to 10 bytes span two groups. Bounds: encodings of keys, cut or perturbed, and random bytes.
  const alphabet = [0x00, 0x01, 0xff];
  const keys = allKeys(alphabet, 9).filter((key) => key.length <= 2 || key.length >= 7);
  const encoded = keys.map(encodeKey);
  assert.ok(encoded.every((key, i) => i === 0 || compareBytes(encoded[i - 1]!, key) < 0));
  const seeded = new SeededRandom(7);
  const random = () => seeded.next();
  const byte = () => [0x00, 0x01, 0xf6, 0xf7, 0xf8, 0xfe, 0xff][Math.floor(random() * 7)]!;
  let checked = 0;
  for (let round = 0; round < 3000; round++) {
    const base = encodeKey(keys[Math.floor(random() * keys.length)]!);
    const cut = base.subarray(0, Math.floor(random() * (base.length + 1)));
    const bound = Uint8Array.from(cut);
    if (bound.length > 0 && random() < 0.5) bound[Math.floor(random() * bound.length)] = byte();
    const expected = bruteForce(keys, encoded, bound);
    if (expected === null) continue;
    const actual = firstUserKeyAtOrAfter(bound);
    assert.ok(
      compareBytes(encodeKey(actual), bound) >= 0,
      `encoding of the answer reaches ${bound}`,
    );
    // The brute force only sees short keys, so the answer may be smaller, never larger.
    assert.ok(compareBytes(actual, expected) <= 0, `no larger than the brute force for ${bound}`);
    if (keys.some((key) => compareBytes(key, actual) === 0)) assert.deepEqual(actual, expected);
    checked++;
  }
  assert.ok(checked > 1000, `checked ${checked} bounds`);
});
