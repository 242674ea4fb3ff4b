/**
 * The Redis gateway: Redis 7 commands (strings, keys, hashes, MULTI/EXEC/WATCH, server
 * commands) over RESP2/RESP3, stored in Basalt through its transactional client. See
 * `gateway.ts` (the server), `layout.ts` (where the data lies), `executor.ts` (how commands
 * become transactions) and `transactions.ts` (WATCH).
 *
 * @module
 */
export { RedisGateway, type RedisGatewayOptions } from "./gateway.ts";
export { REDIS_PREFIX } from "./layout.ts";
