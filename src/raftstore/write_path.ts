/**
 * The write path through the log (src/storage/write_path.ts's contract): a write becomes a
 * `raft_cmdpb.RaftCmdRequest` proposed to its region's peer on this store, and settles when the
 * committed entry is applied — after the round's synced write made it durable in the log.
 *
 * How it keeps the contract:
 * 1. Copy on call: the command is encoded before `write` returns (its bytes are the proposal's
 *    own copy; it waits in the store's inbox until the next round, and a caller may reuse a
 *    buffer). The peer does not read the command's requests again.
 * 2. Atomic: one write is one entry; apply writes an entry's requests in one batch.
 * 3. Settles when applied: the proposal's callback is called at apply (or with its failure).
 *    A region error (`NotLeader`, `EpochNotMatch`, `ServerIsBusy`, `StaleCommand`…) rejects
 *    with `RegionWriteError`, which the command answers as `region_error`.
 * 4. Latches until applied: `release` is called just before the promise settles.
 * 5. In order: proposals enter the inbox, and so the log, in call order.
 * 6. Inside the region: checked before anything is proposed; the epoch is the one the command
 *    was checked against (checked again at propose and at apply).
 *
 * @module
 */

import { admitWrite } from "../storage/mod.ts";
import type { Modification } from "../storage/modification.ts";
import type { RegionMeta } from "../storage/region_range.ts";
import type { WriteOptions, WritePath } from "../storage/write_path.ts";
import { encodeWriteCommand } from "./cmd_codec.ts";
import type { RaftCmd } from "./command.ts";
import { RegionWriteError } from "./errors.ts";
import type { Store } from "./store.ts";

/** Writes of a store's regions, proposed to their peers. */
export class RaftWritePath implements WritePath {
  readonly #store: Store;
  readonly #kick: () => void;
  readonly #refusal: () => Error | null;

  /**
   * `kick` asks for a round (the driver's); `refusal` says why the engine takes no writes now
   * (a full disk's fence), so that a write is refused before it enters the log.
   */
  constructor(store: Store, kick: () => void, refusal: () => Error | null = () => null) {
    this.#store = store;
    this.#kick = kick;
    this.#refusal = refusal;
  }

  write(
    region: RegionMeta,
    modifications: readonly Modification[],
    options?: WriteOptions,
  ): Promise<void> {
    const release = options?.release ?? null;
    const admitted = admitWrite(region, modifications, release, this.#refusal);
    if (typeof admitted !== "number") return admitted;
    const peer = this.#store.peer(region.id);
    const header = {
      regionId: region.id,
      peer: peer === undefined ? null : { ...peer.meta },
      regionEpoch: { confVer: region.confVer, version: region.version },
    };
    // Encoded now, while the caller's buffers hold what it wrote (contract 1): the bytes are the
    // proposal's own copy. The keys were checked against `region` above, so the peer reads only
    // the header (and no request objects are built: cmd_codec.ts writes the modifications).
    const encoded = encodeWriteCommand(header, modifications);
    const cmd: RaftCmd = { header };
    return new Promise<void>((resolve, reject) => {
      this.#store.propose(region.id, cmd, (result) => {
        release?.();
        if (result.ok) resolve();
        else reject(new RegionWriteError(result.error));
      }, encoded);
      this.#kick();
    });
  }
}
