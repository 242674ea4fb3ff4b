/**
 * A PD process that is one member of several (`--initial-cluster` naming more than one): the
 * replicated core (`src/pd/pd_member.ts`) over the process's RocksDB, its Raft ticks on a timer,
 * the members' internal service on the peer URL (`member_transport.ts`), and the `pdpb.PD`
 * dependencies that make the client port serve only while this member leads.
 *
 * Member ids are FNV-1a hashes of each member's name and peer URLs (`memberIdOf`), the same on
 * every member since all read the same `--initial-cluster`; the group id hashes the whole list,
 * so members started with different lists refuse each other's messages.
 *
 * GetMembers on any member lists every member of `--initial-cluster` with the client URLs it
 * learned (its own at once; the others' from their calls and answers — members greet the ones
 * they know nothing of every `GREET_INTERVAL_MS`) and the leader this member knows of.
 *
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import type { pdpb } from "../../../proto/mod.ts";
import { PD_RAFT_TICK_INTERVAL_MS } from "../../constants.ts";
import type { KvEngine } from "../../engine/types.ts";
import type { GrpcEdgeSettings, GrpcServer } from "../../server/grpc_server.ts";
import { startGrpcEdge } from "../../server/grpc_server.ts";
import { assert } from "../../util/assert.ts";
import { SeededRandom } from "../../util/random.ts";
import { PdError } from "../errors.ts";
import { PdMember } from "../pd_member.ts";
import type { PlacementDriver } from "../placement_driver.ts";
import { hostPort, type PdConfig } from "./config.ts";
import type { PdServiceDeps } from "./dependencies.ts";
import type { Logger } from "../../server/log.ts";
import {
  GrpcMemberTransport,
  memberServiceDefinition,
  memberServiceHandlers,
} from "./member_transport.ts";

/** How often a member greets the peers whose client URLs it does not know yet. */
const GREET_INTERVAL_MS = 1_000;

/** A member id from the member's name and peer URLs (FNV-1a, 64 bits), stable across restarts. */
export function memberIdOf(name: string, peerUrls: readonly string[]): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(`${name}@${peerUrls.join(",")}`)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffff_ffff_ffff_ffffn;
  }
  return hash === 0n ? 1n : hash;
}

/** The group id of `--initial-cluster`: the same list gives the same id on every member. */
export function groupIdOf(initialCluster: ReadonlyMap<string, readonly string[]>): bigint {
  const entries = [...initialCluster].map(([name, urls]) => `${name}=${urls.join(",")}`).sort();
  return memberIdOf("basalt-pd-group", entries);
}

/** One member of `--initial-cluster` as this process knows it. */
interface KnownMember {
  name: string;
  memberId: bigint;
  peerUrls: string[];
  clientUrls: string[];
}

/** The running replicated parts: the member, its peer port and its timers. */
export interface ReplicatedPd {
  member: PdMember;
  peerPort: number;
  /** The `pdpb.PD` dependencies' replicated part (merged into the process's deps). */
  deps:
    & Pick<
      PdServiceDeps,
      "members" | "clusterId" | "notServing" | "leaseLapsed" | "persist"
    >
    & {
      readonly driver: PlacementDriver;
    };
  stop(): Promise<void>;
}

/** Starts this process's member of the group. */
export function startReplicated(
  config: PdConfig,
  parts: {
    engine: KvEngine;
    log: Logger;
    /** This member's client URLs (known once the client port is bound). */
    clientUrls: () => string[];
    version: string;
    edge: GrpcEdgeSettings;
    serverCredentials: grpc.ServerCredentials;
    channelCredentials: grpc.ChannelCredentials;
  },
): ReplicatedPd {
  const { log } = parts;
  const known = new Map<bigint, KnownMember>();
  for (const [name, peerUrls] of config.initialCluster) {
    const memberId = memberIdOf(name, peerUrls);
    known.set(memberId, { name, memberId, peerUrls, clientUrls: [] });
  }
  const selfId = memberIdOf(config.name, config.initialCluster.get(config.name)!);
  const groupId = groupIdOf(config.initialCluster);
  const self = known.get(selfId)!;
  const describe = (member: KnownMember): pdpb.Member.$Properties => ({
    name: member.name,
    memberId: member.memberId,
    clientUrls: member.memberId === selfId ? parts.clientUrls() : member.clientUrls,
    peerUrls: member.peerUrls,
    binaryVersion: parts.version,
  });
  const transport = new GrpcMemberTransport({
    groupId,
    peers: [...known.values()].filter((m) => m.memberId !== selfId).map((m) => ({
      id: m.memberId,
      address: hostPort("initial-cluster", m.peerUrls[0]!),
    })),
    credentials: parts.channelCredentials,
    self: () => ({ name: config.name, clientUrls: parts.clientUrls() }),
    learned: (id, answer) => {
      const member = known.get(id);
      if (member !== undefined && answer.name === member.name) {
        member.clientUrls = [...answer.clientUrls];
      }
    },
    log,
  });
  const seed = crypto.getRandomValues(new Uint32Array(1))[0]!;
  const member = PdMember.open({
    id: selfId,
    voters: [...known.keys()],
    engine: parts.engine,
    clock: { nowMs: () => Date.now() },
    random: new SeededRandom(seed),
    transport,
    driver: { config: config.schedule, log },
    electionTimeoutTicks: config.electionTimeoutTicks,
    logger: log,
  });
  const peerServer = startGrpcEdge(hostPort("peer-urls", config.peerUrls[0]!), {
    services: [{
      definition: memberServiceDefinition(),
      handlers: memberServiceHandlers({
        groupId,
        selfId,
        self: () => describe(self),
        deliver: (messages) => {
          for (const message of messages) member.step(message);
        },
        learned: (peer) => {
          for (const other of known.values()) {
            if (other.name === peer.name && other.memberId !== selfId) {
              other.clientUrls = peer.clientUrls;
            }
          }
        },
        log,
      }),
    }],
    edge: parts.edge,
    credentials: parts.serverCredentials,
    log,
  });
  const tick = setInterval(() => member.tick(), PD_RAFT_TICK_INTERVAL_MS);
  const greet = setInterval(() => {
    for (const other of known.values()) {
      if (other.memberId !== selfId && other.clientUrls.length === 0) {
        transport.greet(other.memberId);
      }
    }
  }, GREET_INTERVAL_MS);

  const leader = (): KnownMember | null => known.get(member.leaderId) ?? null;
  return {
    member,
    peerPort: peerServer.port,
    deps: {
      get driver(): PlacementDriver {
        const driver = member.driver;
        assert(driver !== null, "the PD core is read only while this member serves");
        return driver;
      },
      members: () => {
        const lead = leader();
        return {
          members: [...known.values()].map(describe),
          leader: lead === null ? null : describe(lead),
        };
      },
      clusterId: () => member.clusterId,
      notServing: () => {
        if (member.notServing() === null) return null;
        const lead = leader();
        const where = lead === null
          ? "no leader is known yet"
          : `the leader is ${lead.name} (${
            describe(lead).clientUrls?.join(",") || "client URL not known yet"
          })`;
        return new PdError("NotLeader", `not leader: ${config.name} does not serve; ${where}`);
      },
      leaseLapsed: () => member.leaseLapsed(),
      persist: () => member.barrier(),
    },
    async stop() {
      clearInterval(tick);
      clearInterval(greet);
      transport.close();
      await peerServer.shutdown(1_000);
      await member.settled();
    },
  };
}

/** The peer server's type, for callers that name it. */
export type { GrpcServer };
