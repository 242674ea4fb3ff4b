/** Server and connection commands: PING, ECHO, HELLO, INFO, COMMAND, CLIENT, CONFIG, TIME … */
import { REDIS_PROTO_MAX_BULK_BYTES, REDIS_SCAN_PAGE_KEYS } from "../../constants.ts";
import {
  type CommandContext,
  type CommandSpec,
  ERRORS,
  RedisError,
  text,
  upper,
} from "./command.ts";
import { globMatch } from "./glob.ts";
import { dbsize } from "./keys.ts";
import { expiryRange } from "./layout.ts";
import { parseInt64 } from "./numbers.ts";
import { MapReply, OK, type Reply, SetReply, SimpleString, VerbatimReply } from "./resp.ts";

/** The Redis version the gateway answers as (the behaviour it follows). */
export const REDIS_VERSION = "7.0.0";

/** The command table, filled by `table.ts` (COMMAND reads it). */
export const COMMAND_TABLE = new Map<string, CommandSpec>();

function ping(_ctx: CommandContext, args: Uint8Array[]): Reply {
  if (args.length > 2) throw new RedisError("ERR wrong number of arguments for 'ping' command");
  return args.length === 2 ? args[1]! : new SimpleString("PONG");
}

function hello(ctx: CommandContext, args: Uint8Array[]): Reply {
  let at = 1;
  if (args.length > 1) {
    const version = parseInt64(args[1]!);
    if (version === null) {
      throw new RedisError("ERR Protocol version is not an integer or out of range");
    }
    if (version !== 2n && version !== 3n) {
      throw new RedisError("NOPROTO unsupported protocol version");
    }
    at = 2;
    let name: string | null = null;
    for (; at < args.length; at++) {
      const option = upper(args[at]!);
      if (option === "AUTH" && at + 2 < args.length) at += 2; // no passwords: any is accepted
      else if (option === "SETNAME" && at + 1 < args.length) name = clientName(args[++at]!);
      else throw new RedisError(`ERR Syntax error in HELLO option '${text(args[at]!)}'`);
    }
    ctx.session.protocol = Number(version) as 2 | 3;
    if (name !== null) ctx.session.name = name === "" ? null : name;
  }
  return new MapReply([
    "server",
    "redis",
    "version",
    REDIS_VERSION,
    "proto",
    ctx.session.protocol,
    "id",
    ctx.session.id,
    "mode",
    "standalone",
    "role",
    "master",
    "modules",
    [],
  ]);
}

function clientName(arg: Uint8Array): string {
  for (const byte of arg) {
    if (byte < 0x21 || byte > 0x7e) {
      throw new RedisError(
        "ERR Client names cannot contain spaces, newlines or special characters.",
      );
    }
  }
  return text(arg);
}

function client(ctx: CommandContext, args: Uint8Array[]): Reply {
  const sub = upper(args[1]!);
  if (sub === "SETNAME" && args.length === 3) {
    const name = clientName(args[2]!);
    ctx.session.name = name === "" ? null : name;
    return OK;
  }
  if (sub === "GETNAME" && args.length === 2) return ctx.session.name;
  if (sub === "ID" && args.length === 2) return ctx.session.id;
  if (["SETNAME", "GETNAME", "ID"].includes(sub)) {
    throw new RedisError(`ERR wrong number of arguments for 'client|${sub.toLowerCase()}' command`);
  }
  throw new RedisError(`ERR unknown subcommand '${text(args[1]!)}'. Try CLIENT HELP.`);
}

function config(ctx: CommandContext, args: Uint8Array[]): Reply {
  const sub = upper(args[1]!);
  if (sub !== "GET") {
    throw new RedisError(`ERR unknown subcommand '${text(args[1]!)}'. Try CONFIG HELP.`);
  }
  if (args.length < 3) {
    throw new RedisError("ERR wrong number of arguments for 'config|get' command");
  }
  const values: Record<string, string> = {
    "databases": "1",
    "maxmemory": "0",
    "maxclients": String(ctx.gateway.maxClients),
    "proto-max-bulk-len": String(REDIS_PROTO_MAX_BULK_BYTES),
    "save": "",
    "appendonly": "no",
    "timeout": "0",
    "port": String(ctx.gateway.port),
    "hash-max-listpack-entries": "128",
  };
  const out: Reply[] = [];
  for (const [name, value] of Object.entries(values)) {
    const encoded = new TextEncoder().encode(name);
    if (args.slice(2).some((pattern) => globMatch(pattern, encoded))) out.push(name, value);
  }
  return new MapReply(out);
}

function commandInfo(spec: CommandSpec): Reply {
  return [
    spec.name,
    spec.arity,
    new SetReply(spec.flags.map((flag) => new SimpleString(flag))),
    spec.keys[0],
    spec.keys[1],
    spec.keys[2],
    new SetReply([new SimpleString(`@${spec.group}`)]),
    [],
    [],
    [],
  ];
}

function commandDocs(spec: CommandSpec): Reply {
  return new MapReply([
    "summary",
    spec.summary,
    "since",
    spec.since,
    "group",
    spec.group,
  ]);
}

function command(_ctx: CommandContext, args: Uint8Array[]): Reply {
  if (args.length === 1) return [...COMMAND_TABLE.values()].map(commandInfo);
  const sub = upper(args[1]!);
  const named = (from: number) =>
    args.length > from
      ? args.slice(from).map((arg) => COMMAND_TABLE.get(text(arg).toLowerCase()))
      : [...COMMAND_TABLE.values()];
  if (sub === "COUNT" && args.length === 2) return COMMAND_TABLE.size;
  if (sub === "INFO") return named(2).map((spec) => spec === undefined ? null : commandInfo(spec));
  if (sub === "DOCS") {
    const out: Reply[] = [];
    for (const spec of named(2)) if (spec !== undefined) out.push(spec.name, commandDocs(spec));
    return new MapReply(out);
  }
  if (sub === "LIST" && args.length === 2) return [...COMMAND_TABLE.keys()];
  throw new RedisError(`ERR unknown subcommand '${text(args[1]!)}'. Try COMMAND HELP.`);
}

async function countExpiring(ctx: CommandContext): Promise<number> {
  const { start, end } = expiryRange(Number.MAX_SAFE_INTEGER);
  let count = 0;
  let cursor = start;
  for (;;) {
    const page = await ctx.ks.txn.scan(cursor, end, { limit: REDIS_SCAN_PAGE_KEYS, keyOnly: true });
    count += page.length;
    if (page.length < REDIS_SCAN_PAGE_KEYS) return count;
    cursor = Uint8Array.of(...page[page.length - 1]!.key, 0);
  }
}

async function info(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const asked = args.slice(1).map((arg) => text(arg).toLowerCase());
  const everything = asked.length === 0 ||
    asked.some((s) => ["all", "everything", "default"].includes(s));
  const wants = (section: string) => everything || asked.includes(section);
  const { stats } = ctx.gateway;
  const lines: string[] = [];
  if (wants("server")) {
    const uptimeSec = Math.floor((Date.now() - ctx.gateway.startedAtMs) / 1000);
    lines.push(
      "# Server",
      `redis_version:${REDIS_VERSION}`,
      "redis_mode:standalone",
      "basalt_gateway:1",
      `os:${Deno.build.os} ${Deno.build.arch}`,
      `process_id:${Deno.pid}`,
      `run_id:${ctx.gateway.runId}`,
      `tcp_port:${ctx.gateway.port}`,
      `uptime_in_seconds:${uptimeSec}`,
      `uptime_in_days:${Math.floor(uptimeSec / 86400)}`,
      "",
    );
  }
  if (wants("clients")) {
    lines.push("# Clients", `connected_clients:${ctx.gateway.connectedClients}`, "");
  }
  if (wants("stats")) {
    lines.push(
      "# Stats",
      `total_connections_received:${stats.totalConnectionsReceived}`,
      `total_commands_processed:${stats.totalCommandsProcessed}`,
      `rejected_connections:${stats.rejectedConnections}`,
      `expired_keys:${stats.expiredKeys}`,
      `keyspace_hits:${stats.keyspaceHits}`,
      `keyspace_misses:${stats.keyspaceMisses}`,
      `basalt_batches:${stats.batches}`,
      `basalt_batch_retries:${stats.batchRetries}`,
      "",
    );
  }
  if (wants("keyspace")) {
    lines.push("# Keyspace");
    const keys = await dbsize(ctx);
    if (keys > 0) lines.push(`db0:keys=${keys},expires=${await countExpiring(ctx)},avg_ttl=0`);
    lines.push("");
  }
  return new VerbatimReply(lines.join("\r\n"));
}

const local = (spec: Omit<CommandSpec, "kind" | "since" | "keys"> & { since?: string }) =>
  ({ kind: "local", since: "1.0.0", keys: [0, 0, 0], ...spec }) as CommandSpec;

/** The server and connection commands. */
export const SERVER_COMMANDS: CommandSpec[] = [
  local({
    name: "ping",
    arity: -1,
    flags: ["fast"],
    group: "connection",
    summary: "Returns the server's liveliness response.",
    run: ping,
  }),
  local({
    name: "echo",
    arity: 2,
    flags: ["fast"],
    group: "connection",
    summary: "Returns the given string.",
    run: (_ctx, args) => args[1]!,
  }),
  local({
    name: "quit",
    arity: -1,
    flags: ["fast"],
    group: "connection",
    summary: "Closes the connection.",
    run: (ctx) => {
      ctx.session.closing = true;
      return OK;
    },
  }),
  local({
    name: "hello",
    arity: -1,
    flags: ["fast", "no-auth"],
    group: "connection",
    since: "6.0.0",
    summary: "Handshakes with the Redis server.",
    run: hello,
  }),
  local({
    name: "select",
    arity: 2,
    flags: ["fast"],
    group: "connection",
    summary: "Changes the selected database.",
    run: (_ctx, args) => {
      const db = parseInt64(args[1]!);
      if (db === null) throw new RedisError(ERRORS.notInteger);
      if (db !== 0n) throw new RedisError(ERRORS.dbIndex);
      return OK;
    },
  }),
  local({
    name: "client",
    arity: -2,
    flags: [],
    group: "connection",
    since: "2.4.0",
    summary: "A container for client connection commands.",
    run: client,
  }),
  local({
    name: "config",
    arity: -2,
    flags: [],
    group: "server",
    since: "2.0.0",
    summary: "A container for server configuration commands.",
    run: config,
  }),
  local({
    name: "time",
    arity: 1,
    flags: ["fast"],
    group: "server",
    since: "2.6.0",
    summary: "Returns the server time.",
    run: () => {
      const micros = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
      return [String(micros / 1_000_000n), String(micros % 1_000_000n)];
    },
  }),
  local({
    name: "command",
    arity: -1,
    flags: [],
    group: "server",
    since: "2.8.13",
    summary: "Returns detailed information about all commands.",
    run: command,
  }),
  {
    name: "info",
    arity: -1,
    kind: "data",
    flags: [],
    keys: [0, 0, 0],
    group: "server",
    since: "1.0.0",
    summary: "Returns information and statistics about the server.",
    run: info,
  },
];
