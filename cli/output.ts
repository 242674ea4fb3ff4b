/** How `basalt-ctl` shows and reads keys and values. */
import { fromHex, fromUtf8, toHex, utf8 } from "../src/util/bytes.ts";
import { CtlError } from "./ctl_error.ts";

/** Printable form of a key or value: text when it is plain ASCII, else `0x` and hex. */
export function printable(bytes: Uint8Array): string {
  const plain = bytes.every((b) => b >= 0x20 && b < 0x7f);
  return plain ? fromUtf8(bytes) : `0x${toHex(bytes)}`;
}

/** How keys and values are given on the command line and shown. */
export interface Encoding {
  /** Arguments and output as hex instead of UTF-8 text. */
  hex: boolean;
}

/** Bytes of a command-line argument: UTF-8, or hex with `--hex`. */
export function argumentBytes(argument: string, encoding: Encoding): Uint8Array {
  if (!encoding.hex) return utf8(argument);
  try {
    return fromHex(argument.replace(/^0x/i, ""));
  } catch {
    throw new CtlError(`"${argument}" is not hex (--hex takes keys and values as hex)`);
  }
}

/** Human output of bytes: hex with `--hex`, else printable text. */
export function humanBytes(bytes: Uint8Array, encoding: Encoding): string {
  return encoding.hex ? toHex(bytes) : printable(bytes);
}

/** JSON output of bytes: hex with `--hex`, else the UTF-8 text. */
export function jsonBytes(bytes: Uint8Array, encoding: Encoding): string {
  return encoding.hex ? toHex(bytes) : fromUtf8(bytes);
}
