/**
 * What the standalone store's PD face is given: the embedded PD, the store's current view, a
 * logger, and the set where open streams are kept for shutdown. `service.ts` turns them into
 * the dependencies of the one `pdpb.PD` service (`src/pd/server/`).
 *
 * @module
 */
import type { DrainableStream, PdLog } from "../../pd/server/dependencies.ts";
import type { StandalonePd } from "./standalone.ts";
import type { PdView } from "./view.ts";

export type { DrainableStream, PdLog };

/** What the PD handlers of a standalone store need. */
export interface PdDependencies {
  pd: StandalonePd;
  /** The store as it is now; called on every request. */
  view: () => PdView;
  log: PdLog;
  /** Open streams are added here while they last, so shutdown can `drain()` them. */
  openStreams?: Set<DrainableStream>;
}
