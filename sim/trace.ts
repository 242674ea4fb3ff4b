/**
 * The simulation history: every line is hashed (FNV-1a, 64-bit) so two runs can be compared
 * byte for byte cheaply; the last lines are kept for failure reports, or all of them on request.
 *
 * Invariant: the hash covers every line ever recorded, in order.
 *
 * @module
 */

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;

/** A bounded, hashed log of what happened. */
export class Trace {
  private hash = FNV_OFFSET;
  private lines: string[] = [];
  /** Total lines recorded. */
  count = 0;

  /** Keeps the last `keepLines` lines (all of them if `keepAll`). */
  constructor(readonly keepLines: number, readonly keepAll = false) {}

  /** Records one line. */
  add(line: string): void {
    let h = this.hash;
    for (let i = 0; i < line.length; i++) {
      h = ((h ^ BigInt(line.charCodeAt(i))) * FNV_PRIME) & MASK;
    }
    this.hash = ((h ^ 10n) * FNV_PRIME) & MASK;
    this.count++;
    this.lines.push(line);
    if (!this.keepAll && this.lines.length > this.keepLines * 2) {
      this.lines = this.lines.slice(this.lines.length - this.keepLines);
    }
  }

  /** The hash of every line so far, as 16 hex digits. */
  digest(): string {
    return this.hash.toString(16).padStart(16, "0");
  }

  /** The kept lines (the last `keepLines`, or all). */
  tail(): string[] {
    return this.keepAll ? this.lines : this.lines.slice(-this.keepLines);
  }
}
