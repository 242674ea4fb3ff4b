/**
 * The replicated state machine of the simulation: a string register per key, with
 * at-most-once application of each client operation (a retried proposal may be committed
 * twice; only the first copy takes effect, as a session table does in a real store).
 *
 * Invariant: the state is a pure function of the applied entries, so two nodes that applied
 * the same log prefix hold equal state, and `snapshot()` is byte-identical between them.
 *
 * @module
 */

import {
  applyConfChangeToConfState,
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryType,
} from "../src/raft/mod.ts";

/** A client write as carried in entry data. */
export interface KvCommand {
  opId: string;
  key: string;
  value: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a command as entry data. */
export function encodeCommand(c: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify([c.opId, c.key, c.value]));
}

/** Decodes entry data written by `encodeCommand`. */
export function decodeCommand(data: Uint8Array): KvCommand {
  const [opId, key, value] = JSON.parse(decoder.decode(data)) as [string, string, string];
  return { opId, key, value };
}

/** The key-value registers, the applied-op table and the applied membership. */
export class KvStateMachine {
  private data = new Map<string, string>();
  private appliedOps = new Set<string>();
  /** Membership as of `appliedIndex`, recorded into snapshots. */
  confState: ConfState;
  appliedIndex = 0n;

  /** A state machine that starts from membership `confState`. */
  constructor(confState: ConfState) {
    this.confState = confState;
  }

  /** Applies one committed entry. Returns the op id of a client write, if it was one. */
  apply(e: Entry): string | undefined {
    if (e.index <= this.appliedIndex) {
      throw new Error(`apply: entry ${e.index} <= applied ${this.appliedIndex}`);
    }
    this.appliedIndex = e.index;
    if (e.entryType === EntryType.EntryConfChange) {
      this.confState = applyConfChangeToConfState(this.confState, decodeConfChange(e.data));
      return undefined;
    }
    if (e.data.length === 0) return undefined;
    const c = decodeCommand(e.data);
    if (!this.appliedOps.has(c.opId)) {
      this.appliedOps.add(c.opId);
      this.data.set(c.key, c.value);
    }
    return c.opId;
  }

  /** The current value of `key`. */
  get(key: string): string | undefined {
    return this.data.get(key);
  }

  /** A deterministic serialization of the whole state. */
  snapshot(): Uint8Array {
    const data = [...this.data].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const ops = [...this.appliedOps].sort();
    return encoder.encode(JSON.stringify({ data, ops }));
  }

  /** Replaces the state by a snapshot taken at `index` with membership `confState`. */
  restore(opts: { data: Uint8Array; index: bigint; confState: ConfState }): void {
    const parsed = JSON.parse(decoder.decode(opts.data)) as {
      data: [string, string][];
      ops: string[];
    };
    this.data = new Map(parsed.data);
    this.appliedOps = new Set(parsed.ops);
    this.appliedIndex = opts.index;
    this.confState = opts.confState;
  }
}
