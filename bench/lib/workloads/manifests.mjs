/** GET /v2/ and the manifest workloads: GET and HEAD by tag and by digest, PUT. */
import { MANIFEST_ACCEPT } from "../client.mjs";
import { imageManifest } from "../data.mjs";
import { REPOS } from "../fixtures.mjs";
import { runPool } from "../pool.mjs";
import { P50, P99, poolOutcome, rate } from "./outcomes.mjs";

/**
 * GET /v2/ does no storage work: its rate is the ceiling any request can
 * reach through the server's HTTP path (for ours, the wrangler dev proxy
 * and the worker), against which the other rates can be read.
 */
const baseGet = {
  id: "base-get",
  title: "GET /v2/ (no storage: the per-request floor), c=32",
  figures: [rate("req/s"), P50, P99],
  floorTarget: true,
  floor: () => [{ method: "GET", target: "/v2/" }],
  async run({ config }, { client }) {
    return poolOutcome(await runPool({ count: config.manifestRequests, concurrency: 32, task: () => client.apiVersion() }));
  },
};

/** GET or HEAD of the image manifest by tag or by digest, concurrency 32; GET checks the exact bytes. */
function manifestReadOf({ method, by }) {
  const reference = (data) => (by === "tag" ? "latest" : data.image.digest);
  return {
    id: `manifest-${method.toLowerCase()}${by === "tag" ? "" : "-digest"}`,
    title: `manifest ${method} by ${by}, c=32${method === "GET" ? " (exact bytes checked)" : ""}`,
    figures: [rate("req/s"), P50, P99],
    floorTarget: true,
    floor: ({ data }) => [{ method, target: `/v2/${REPOS.manifests}/manifests/${reference(data)}`, headers: { Accept: MANIFEST_ACCEPT } }],
    async run({ config, data }, { client }) {
      const read = method === "GET" ? () => client.getManifest(REPOS.manifests, reference(data), data.image) : () => client.headManifest(REPOS.manifests, reference(data), data.image);
      return poolOutcome(await runPool({ count: config.manifestRequests, concurrency: 32, task: read }));
    },
  };
}

const manifestPut = {
  id: "manifest-put",
  title: "manifest PUT by tag (new manifest each), c=8",
  figures: [rate("req/s"), P50, P99],
  async run({ config, data, round }, { client }) {
    const manifests = Array.from({ length: config.manifestPuts }, (_, i) => imageManifest(data.emptyConfig, data.layer, `put ${round} ${i} ${Math.random()}`));
    return poolOutcome(
      await runPool({ count: manifests.length, concurrency: 8, task: (i) => client.putManifest(REPOS.manifests, `put-${round}-${i}`, manifests[i]) }),
    );
  },
};

export const MANIFEST_WORKLOADS = [
  baseGet,
  manifestReadOf({ method: "GET", by: "tag" }),
  manifestReadOf({ method: "HEAD", by: "tag" }),
  manifestReadOf({ method: "GET", by: "digest" }),
  manifestReadOf({ method: "HEAD", by: "digest" }),
  manifestPut,
];
