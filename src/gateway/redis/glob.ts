/**
 * Redis's glob patterns (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a-z]`, `\x` escapes, over
 * bytes. Runs of `*` are folded, and the matcher is iterative with one backtrack point, so a
 * hostile pattern costs O(pattern × subject), never exponential time or a deep stack.
 */

/** Whether `subject` matches `pattern`. */
export function globMatch(pattern: Uint8Array, subject: Uint8Array): boolean {
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  while (s < subject.length) {
    if (p < pattern.length) {
      const c = pattern[p]!;
      if (c === 0x2a /* * */) {
        while (p < pattern.length && pattern[p] === 0x2a) p++;
        if (p === pattern.length) return true;
        starP = p;
        starS = s;
        continue;
      }
      const step = matchOne(pattern, p, subject[s]!);
      if (step > 0) {
        p += step;
        s++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    s = ++starS;
  }
  while (p < pattern.length && pattern[p] === 0x2a) p++;
  return p === pattern.length;
}

/**
 * Whether the pattern element at `p` (not `*`) matches `byte`: the element's length in the
 * pattern, or 0 for no match.
 */
function matchOne(pattern: Uint8Array, p: number, byte: number): number {
  const c = pattern[p]!;
  if (c === 0x3f /* ? */) return 1;
  if (c === 0x5c /* \ */ && p + 1 < pattern.length) return pattern[p + 1] === byte ? 2 : 0;
  if (c !== 0x5b /* [ */) return c === byte ? 1 : 0;
  let at = p + 1;
  const negate = pattern[at] === 0x5e; /* ^ */
  if (negate) at++;
  let matched = false;
  for (;;) {
    if (at >= pattern.length) {
      at--; // Redis: an unterminated class ends at the pattern's end
      break;
    }
    const d = pattern[at]!;
    if (d === 0x5d /* ] */) break;
    if (d === 0x5c && at + 2 < pattern.length) {
      at++;
      if (pattern[at] === byte) matched = true;
    } else if (at + 2 < pattern.length && pattern[at + 1] === 0x2d /* - */) {
      let low = d;
      let high = pattern[at + 2]!;
      if (low > high) [low, high] = [high, low];
      if (byte >= low && byte <= high) matched = true;
      at += 2;
    } else if (d === byte) {
      matched = true;
    }
    at++;
  }
  if (negate) matched = !matched;
  return matched ? at - p + 1 : 0;
}

/** Whether `pattern` is `*` alone (matches everything: no per-key work). */
export function matchesAll(pattern: Uint8Array): boolean {
  return pattern.length > 0 && pattern.every((byte) => byte === 0x2a);
}
