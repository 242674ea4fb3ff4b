/**
 * One client connection: read → parse every complete command → dispatch each → write every
 * reply, in order, in one write per read.
 *
 * A pipeline is answered without a round trip per command: the commands of one read are all
 * handed to the executor before the first reply is awaited, so they share its batches (one
 * transaction for many commands of many connections). Replies are written in command order:
 * `local` commands (PING, HELLO …) run when their turn to answer comes, so HELLO switches the
 * protocol for the replies after its own, and QUIT stops at its place.
 *
 * MULTI queues commands here (checked for name and arity, as Redis does when queueing); EXEC
 * hands the queue to the executor as one job. A protocol error is answered with Redis's text,
 * after the replies of the commands before it, and the connection is closed, as Redis does.
 */
import { REDIS_MAX_KEY_BYTES, REDIS_QUERY_BUFFER_MAX_BYTES } from "../../constants.ts";
import {
  type CommandContext,
  type CommandSpec,
  keyArgs,
  type RedisError,
  text,
} from "./command.ts";
import { type Executor, type Job, runCommand } from "./executor.ts";
import { bytesOfBinaryKey } from "./layout.ts";
import {
  ErrorReply,
  OK,
  ProtocolError,
  QUEUED,
  type Reply,
  RespParser,
  RespWriter,
} from "./resp.ts";
import type { Session } from "./session.ts";
import type { GatewayState } from "./state.ts";
import { lookupCommand } from "./table.ts";
import { checkQueueRoom, exec } from "./transactions.ts";

/** A reply to come: a value, a promise of the executor, or a local command run at its turn. */
type Pending = Reply | Promise<Reply> | (() => Promise<Reply>);

/** Bytes asked of each read. */
const READ_BYTES = 64 * 1024;

/** What a connection needs of its gateway. */
export interface ConnectionDeps {
  state: GatewayState;
  executor: Executor;
}

/** Serves `conn` until the client leaves, breaks the protocol, or QUITs. */
export async function serveConnection(
  conn: Deno.Conn,
  session: Session,
  deps: ConnectionDeps,
): Promise<void> {
  const parser = new RespParser();
  const writer = new RespWriter();
  try {
    for (;;) {
      const count = await conn.read(parser.space(READ_BYTES));
      if (count === null) return;
      parser.filled(count);
      const pending: Pending[] = [];
      let failure: ProtocolError | null = null;
      try {
        for (let args = parser.next(); args !== null; args = parser.next()) {
          pending.push(dispatch(args, session, deps));
          if (session.closing) break; // QUIT: nothing after it runs
        }
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        failure = error;
      }
      if (failure === null && parser.pendingBytes > REDIS_QUERY_BUFFER_MAX_BYTES) return;
      for (const item of pending) {
        const reply = typeof item === "function" ? await item() : await item;
        writer.protocol = session.protocol; // HELLO answers in the protocol it chose
        writer.write(reply);
      }
      if (failure !== null) writer.write(new ErrorReply(`ERR ${failure.message}`));
      await writeAll(conn, writer.take());
      writer.shrink();
      if (failure !== null || session.closing) return;
    }
  } catch (error) {
    if (!isDisconnect(error)) throw error;
  } finally {
    deps.state.unwatchAll(session);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.NotConnected;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

/** Redis 7's text for an unknown command (the name, then up to 128 bytes of arguments). */
function unknownCommand(args: Uint8Array[]): string {
  let rest = "";
  for (let i = 1; i < args.length && rest.length < 128; i++) {
    rest += `'${text(args[i]!).slice(0, 128 - rest.length)}' `;
  }
  return `ERR unknown command '${text(args[0]!).slice(0, 128)}', with args beginning with: ${rest}`;
}

/** The reason `args` cannot run under `spec` (arity, key length), or null. */
function refusal(spec: CommandSpec | undefined, args: Uint8Array[]): string | null {
  if (spec === undefined) return unknownCommand(args);
  const arity = spec.arity;
  if ((arity > 0 && args.length !== arity) || args.length < -arity) {
    return `ERR wrong number of arguments for '${spec.name}' command`;
  }
  for (const key of keyArgs(spec, args)) {
    if (key.length > REDIS_MAX_KEY_BYTES) {
      return `ERR key too long (a Basalt limit: ${REDIS_MAX_KEY_BYTES} bytes)`;
    }
  }
  return null;
}

function dataJob(
  session: Session,
  commands: { spec: CommandSpec; args: Uint8Array[] }[],
  run: Job["run"],
): Job {
  const keys: Uint8Array[] = [];
  const storageKeys: Uint8Array[] = [];
  let needsTxn = false;
  let global = false;
  let argumentBytes = 0;
  for (const { spec, args } of commands) {
    const named = keyArgs(spec, args);
    if (spec.kind === "data") needsTxn = true;
    // A data command naming no key reads or writes any (KEYS, SCAN, FLUSHDB, INFO keyspace).
    if (spec.kind === "data" && named.length === 0) global = true;
    keys.push(...named);
    if (spec.prefetch !== undefined) storageKeys.push(...spec.prefetch(args));
    // Only writes count towards a batch's bytes (its 1PC bound): reads add no mutation.
    if (!spec.flags.includes("readonly")) { for (const arg of args) argumentBytes += arg.length; }
  }
  const writes = commands.some(({ spec }) => !spec.flags.includes("readonly"));
  return { session, needsTxn, keys, storageKeys, global, writes, argumentBytes, run };
}

/** Starts (or queues, or answers) one command; returns its reply to come. */
function dispatch(args: Uint8Array[], session: Session, deps: ConnectionDeps): Pending {
  const name = text(args[0]!).toLowerCase();
  const spec = lookupCommand(name);
  const refused = refusal(spec, args);
  if (refused !== null) {
    if (session.multi !== null) session.multiFailed = true;
    return new ErrorReply(refused);
  }
  switch (name) {
    case "multi":
      if (session.multi !== null) return new ErrorReply("ERR MULTI calls can not be nested");
      session.multi = [];
      session.multiFailed = false;
      return OK;
    case "exec":
      return dispatchExec(session, deps);
    case "discard":
      if (session.multi === null) return new ErrorReply("ERR DISCARD without MULTI");
      session.multi = null;
      return deps.executor.submit(dataJob(session, [], (ctx) => unwatch(ctx)));
    case "watch":
      if (session.multi !== null) return new ErrorReply("ERR WATCH inside MULTI is not allowed");
  }
  if (session.multi !== null) {
    try {
      checkQueueRoom(session.multi);
    } catch (error) {
      session.multiFailed = true;
      return new ErrorReply((error as RedisError).message);
    }
    session.multi.push({ spec: spec!, args });
    return QUEUED;
  }
  const ctx = { session, gateway: deps.state } as CommandContext;
  if (spec!.kind === "local") {
    deps.state.stats.totalCommandsProcessed++;
    return () => runCommand(ctx, (ctx) => spec!.run(ctx, args));
  }
  return deps.executor.submit(
    dataJob(session, [{ spec: spec!, args }], (ctx) => spec!.run(ctx, args)),
  );
}

function unwatch(ctx: CommandContext): Reply {
  ctx.gateway.unwatchAll(ctx.session);
  return OK;
}

function dispatchExec(session: Session, deps: ConnectionDeps): Pending {
  const queued = session.multi;
  if (queued === null) return new ErrorReply("ERR EXEC without MULTI");
  session.multi = null;
  if (session.multiFailed) {
    session.multiFailed = false;
    return deps.executor.submit(
      dataJob(session, [], (ctx) => {
        unwatch(ctx);
        return new ErrorReply("EXECABORT Transaction discarded because of previous errors.");
      }),
    );
  }
  const job = dataJob(session, queued, (ctx) => exec(ctx, queued));
  // The watch checks read the watched records too (one request for all), and the EXEC is
  // ordered after the other jobs on them. A WATCH still running is ahead of it anyway: both
  // are ordered on the connection.
  for (const key of session.watched.keys()) job.keys.push(bytesOfBinaryKey(key));
  job.needsTxn = true;
  return deps.executor.submit(job);
}
