/**
 * The workloads. A workload is
 *   { id, title, figures: [{ key, label, higherIsBetter }], run(context, server) → outcome (see outcomes.mjs) }
 * and optionally:
 *   instance       which instance of ours plays "ours" (default "ours"; "ours-direct" runs with
 *                  BLOB_REDIRECT=none, "ours-redirect" with REDIRECT_MIN_BYTES=1); alsoUses: others it reads
 *   floor(context) the requests its floor twin replays (see floor.mjs); floorTarget: judged ≥ 0.9× the floor
 *   peer: false    not run on distribution
 *   needsRedirect  why it is skipped when ours answers blob GETs directly
 *   unsupported(state) why a server cannot run it (state: what setup found out about that server)
 */
import { BLOB_WORKLOADS } from "./blobs.mjs";
import { LISTING_WORKLOADS } from "./listings.mjs";
import { MANIFEST_WORKLOADS } from "./manifests.mjs";

export { MEMORY_WORKLOADS } from "./memory-uploads.mjs";

export const MAIN_WORKLOADS = [...MANIFEST_WORKLOADS, ...BLOB_WORKLOADS, ...LISTING_WORKLOADS];
