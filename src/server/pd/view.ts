/**
 * What the embedded PD reports about the store it runs in: its client URLs, the version it
 * reports, and the store's own description for PutStore. The handlers ask for a fresh view on
 * every call (a function, not a value), so a store whose ports are known only after binding
 * is reported as it is now.
 *
 * @module
 */
import type { StorePut } from "../../pd/cluster.ts";

/** The store as the embedded PD reports it. */
export interface PdView {
  /** Where clients reach this PD, as `http://host:port`. */
  clientUrls: string[];
  /** The version reported for the store and the PD member. */
  version: string;
  /** Store 1 as it describes itself (its id is added by the PD). */
  store: Omit<StorePut, "id">;
}

/**
 * The version a standalone store reports. TiKV clients turn features on by the store version
 * they read from PD (async commit and 1PC need ≥ 5.0); Basalt speaks the kvproto of TiKV 8.x.
 */
export const STANDALONE_REPORTED_VERSION = "8.5.0";

/** How the standalone store is described. */
export interface StandaloneViewOptions {
  /** The store's gRPC address, host:port (also the PD's address). */
  addr: string;
  /** The store's status HTTP address, host:port. */
  statusAddr: string;
  version?: string;
  /** Unix seconds when the store started. */
  startTimestampSec?: bigint;
}

/** The view of a standalone store: store 1 at its addresses, the PD at its gRPC address. */
export function standaloneView(options: StandaloneViewOptions): PdView {
  const version = options.version ?? STANDALONE_REPORTED_VERSION;
  return {
    clientUrls: [`http://${options.addr}`],
    version,
    store: {
      address: options.addr,
      statusAddress: options.statusAddr,
      version,
      startTimestamp: options.startTimestampSec ?? 0n,
    },
  };
}
