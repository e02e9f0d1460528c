/**
 * The floor: bench/floor/worker.js, a Worker with no work of its own, under
 * the same wrangler dev, workerd and R2 simulator as ours, measured by the same
 * client in the same rounds. What it cannot do, our registry under wrangler dev
 * cannot either: the distance from it to ours is what ours costs, the distance
 * from it to distribution is the simulator's.
 */
import { check, RegistryClient } from "./client.mjs";
import { variantOf } from "./data.mjs";
import { runPool } from "./pool.mjs";
import { median } from "./stats.mjs";
import { poolOutcome, transferOutcome } from "./workloads.mjs";

/** Each measure names the workload of ours it bounds (null: none of ours reads that way in the bench). */
const MEASURES = [
  {
    title: "GET /v2/, c=32",
    unit: "req/s",
    bounds: "base-get",
    run: ({ client, config }) => runPool({ count: config.manifestRequests, concurrency: 32, task: () => client.apiVersion() }).then(poolOutcome),
  },
  {
    title: "big blob GET, object stored with one put",
    unit: "MiB/s",
    bounds: "pull-big",
    run: ({ client, blob }) => transferOutcome(blob.size, () => client.pullBlob("single", blob.digest, blob.size)),
  },
  {
    title: "big blob GET, object stored in 8 MiB multipart parts",
    unit: "MiB/s",
    bounds: null,
    run: ({ client, blob }) => transferOutcome(blob.size, () => client.pullBlob("parts", blob.digest, blob.size)),
  },
];

/** The floor's measures, one round at a time (interleaved with the registries' rounds), and their medians. */
export class FloorRun {
  #rates = MEASURES.map(() => []);
  #failures = MEASURES.map(() => []);

  constructor({ client, blob, config, log }) {
    Object.assign(this, { client, blob, config, log });
  }

  /** Seeds the big blob in both layouts and warms the Worker up, as the registries' setup warms them. */
  static async prepare({ server, data, config, log }) {
    const client = new RegistryClient("floor", server.baseUrl);
    const blob = variantOf(data.big.bytes);
    for (const layout of ["single", "parts"]) {
      const response = await fetch(new URL(`/seed/${layout}/${blob.digest}`, server.baseUrl), { method: "PUT", body: blob.bytes });
      await response.arrayBuffer();
      check(response.status === 201, `floor: seeding the ${layout} object answered ${response.status}`);
    }
    await runPool({ count: 500, concurrency: 32, task: () => client.apiVersion() });
    return new FloorRun({ client, blob, config, log });
  }

  async round(round) {
    for (const [index, measure] of MEASURES.entries()) {
      const outcome = await measure.run({ client: this.client, config: this.config, blob: this.blob });
      this.#rates[index].push(outcome.values.rate);
      this.#failures[index].push(...outcome.failures);
      this.log(`[round ${round}/${this.config.rounds}] floor ${measure.title}: ${outcome.values.rate.toFixed(1)} ${measure.unit}`);
    }
  }

  summary() {
    return MEASURES.map(({ title, unit, bounds }, index) => ({
      title,
      unit,
      bounds,
      rate: median(this.#rates[index].filter(Number.isFinite)),
      failures: this.#failures[index],
    }));
  }
}
