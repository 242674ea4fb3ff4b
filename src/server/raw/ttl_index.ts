/**
 * The raw TTL expiry index, as the raw store names it: the layout lives in
 * `src/storage/ttl_index.ts`, where the raftstore (which carries a region's entries in its
 * snapshots) may import it too without depending on src/server.
 *
 * @module
 */
export * from "../../storage/ttl_index.ts";
