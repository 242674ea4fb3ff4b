/**
 * One client connection's state: its id and name, protocol version, MULTI queue and WATCHed
 * keys. Read and changed by the connection and by the commands it runs.
 */
import type { CommandSpec } from "./command.ts";

/** A key a session watches: changed (by anyone) after WATCH, EXEC answers nil. */
export interface WatchEntry {
  readonly session: Session;
  /** The Redis key as `binaryKey`. */
  readonly key: string;
  /** The ts the key was watched at (the commit ts of WATCH's batch); null until it committed. */
  ts: bigint | null;
  /** Set when a command of this gateway changed the key after WATCH. */
  dirty: boolean;
  /** Whether the key was live at WATCH: a live key that expires since makes EXEC answer nil. */
  wasLive: boolean;
}

/** A command queued between MULTI and EXEC. */
export interface QueuedCommand {
  spec: CommandSpec;
  args: Uint8Array[];
}

/** The state of one connection. */
export class Session {
  name: string | null = null;
  protocol: 2 | 3 = 2;
  /** Non-null between MULTI and EXEC/DISCARD. */
  multi: QueuedCommand[] | null = null;
  /** Set when a command could not be queued: EXEC then answers EXECABORT. */
  multiFailed = false;
  readonly watched = new Map<string, WatchEntry>();
  /** Set by QUIT and protocol errors: close once the replies so far are written. */
  closing = false;

  constructor(readonly id: number, readonly address: string) {}
}
