/**
 * Redis's number rules: integers as `string2ll` reads them (no sign but `-`, no leading zeros,
 * no blanks, 64-bit signed), and INCRBYFLOAT's decimals.
 *
 * INCRBYFLOAT: Redis adds two `long double`s (x87, 64-bit mantissa) and prints the sum with
 * `%.17Lf`, trailing zeros and point removed, so `0.1 + 0.2` reads back `0.3`. The gateway adds
 * the two decimals exactly (as a big integer and a power of ten) and rounds to 17 decimals the
 * same way: the same text for every operand with at most ~19 significant digits; for longer
 * ones the exact sum, where Redis prints its binary approximation (a stated difference).
 */

/** The largest and smallest 64-bit signed integers. */
export const INT64_MAX = (1n << 63n) - 1n;
export const INT64_MIN = -(1n << 63n);

/** `bytes` as a 64-bit signed integer, exactly as Redis's `string2ll`; null when it is not. */
export function parseInt64(bytes: Uint8Array): bigint | null {
  const length = bytes.length;
  if (length === 0 || length > 20) return null;
  if (length === 1 && bytes[0] === 0x30) return 0n;
  let at = 0;
  const negative = bytes[0] === 0x2d;
  if (negative) at = 1;
  if (at >= length) return null;
  const first = bytes[at]!;
  if (first < 0x31 || first > 0x39) return null;
  // Up to 15 digits fit a double exactly: the common case needs no bigint.
  if (length - at <= 15) {
    let value = 0;
    for (; at < length; at++) {
      const digit = bytes[at]! - 0x30;
      if (digit < 0 || digit > 9) return null;
      value = value * 10 + digit;
    }
    return BigInt(negative ? -value : value);
  }
  let value = 0n;
  for (; at < length; at++) {
    const digit = bytes[at]! - 0x30;
    if (digit < 0 || digit > 9) return null;
    value = value * 10n + BigInt(digit);
  }
  const signed = negative ? -value : value;
  return signed > INT64_MAX || signed < INT64_MIN ? null : signed;
}

/** `parseInt64` as a JS number when it is a safe integer; null otherwise. */
export function parseSafeInt(bytes: Uint8Array): number | null {
  const value = parseInt64(bytes);
  if (value === null) return null;
  const number = Number(value);
  return Number.isSafeInteger(number) ? number : null;
}

/** An exact decimal: `sign × digits × 10^exponent`. */
interface Decimal {
  negative: boolean;
  digits: bigint;
  exponent: number;
}

/** Decimal exponents beyond this overflow (or underflow) a long double. */
const LONG_DOUBLE_MAX_EXPONENT = 4932;
/** Longest float text Redis reads (`MAX_LONG_DOUBLE_CHARS`). */
const FLOAT_TEXT_MAX_BYTES = 5 * 1024;

/**
 * `text` as an exact decimal, as `strtold` would accept it in Redis's `string2ld` (an optional
 * sign, digits with an optional point, an optional exponent); null when it is not one, or when
 * it would overflow or underflow a long double, or is infinite or NaN.
 */
function parseDecimal(text: string): Decimal | null {
  if (text.length === 0 || text.length >= FLOAT_TEXT_MAX_BYTES) return null;
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (match === null) return null;
  const whole = match[2] ?? "";
  const fraction = match[3] ?? "";
  if (whole === "" && fraction === "") return null;
  const exponentText = match[4] ?? "0";
  if (exponentText.replace(/^[+-]?0*/, "").length > 6) return null;
  const exponent = Number(exponentText) - fraction.length;
  const digits = BigInt((whole + fraction).replace(/^0+(?=\d)/, "") || "0");
  if (digits !== 0n) {
    const magnitude = digits.toString().length + exponent;
    if (magnitude > LONG_DOUBLE_MAX_EXPONENT || magnitude < -LONG_DOUBLE_MAX_EXPONENT) return null;
  }
  return { negative: match[1] === "-", digits, exponent };
}

function signed(decimal: Decimal): bigint {
  return decimal.negative ? -decimal.digits : decimal.digits;
}

/** The text of `value × 10^exponent` rounded to 17 decimals, trailing zeros removed. */
function formatScaled(value: bigint, exponent: number): string {
  const negative = value < 0n;
  let magnitude = negative ? -value : value;
  let scale = -exponent; // decimals held by `magnitude`
  if (scale > 17) {
    const divisor = 10n ** BigInt(scale - 17);
    const rest = magnitude % divisor;
    magnitude /= divisor;
    if (rest * 2n >= divisor) magnitude += 1n;
    scale = 17;
  }
  if (scale < 0) {
    magnitude *= 10n ** BigInt(-scale);
    scale = 0;
  }
  let text = magnitude.toString().padStart(scale + 1, "0");
  if (scale > 0) {
    text = `${text.slice(0, text.length - scale)}.${text.slice(text.length - scale)}`;
    text = text.replace(/0+$/, "").replace(/\.$/, "");
  }
  return negative && text !== "0" ? `-${text}` : text;
}

/** What INCRBYFLOAT yields: the new value's text, or the error Redis answers. */
export type FloatSum = { text: string } | { error: string };

/**
 * `current + increment` as INCRBYFLOAT computes and prints it. `current` null: the key is
 * absent (0).
 */
export function addFloats(current: string | null, increment: string): FloatSum {
  const base = current === null ? { negative: false, digits: 0n, exponent: 0 } : parseDecimal(
    current,
  );
  const step = parseDecimal(increment);
  if (base === null || step === null) return { error: "ERR value is not a valid float" };
  const exponent = Math.min(base.exponent, step.exponent);
  const sum = signed(base) * 10n ** BigInt(base.exponent - exponent) +
    signed(step) * 10n ** BigInt(step.exponent - exponent);
  if (sum !== 0n && sum.toString().replace("-", "").length + exponent > LONG_DOUBLE_MAX_EXPONENT) {
    return { error: "ERR increment would produce NaN or Infinity" };
  }
  return { text: formatScaled(sum, exponent) };
}
