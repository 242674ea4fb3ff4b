/**
 * The one way this tree opens a grpc-js client: with the GOAWAY guard installed first
 * (`goaway_guard.ts`), so that a server that stops (and says GOAWAY) cannot make Deno's HTTP/2
 * answer it with a GOAWAY of ours and abort this process — a store's Raft and PD connections,
 * the client library, ctl and the tests alike.
 */
import * as grpc from "@grpc/grpc-js";
import { installGoawayGuard } from "./goaway_guard.ts";

/** `new grpc.Client(address, credentials, options)`, the guard installed. */
export function newGrpcClient(
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
): grpc.Client {
  installGoawayGuard();
  return new grpc.Client(address, credentials, options);
}
