/**
 * The floor twins: each request-bound workload of ours is also run against
 * bench/floor/worker.js, a Worker with no work of its own under the same
 * wrangler dev, workerd and R2 simulator, by the same client in the same
 * round. Before the rounds, the answers of ours to the requests a workload
 * makes are recorded here and handed to the floor, which replays them: the
 * same status, headers and body, or one R2 get where ours streams a blob, as
 * ours answers each request the second time (warm, as the rounds time it).
 * So the floor answers exactly what ours answers, the client's checks pass on
 * both, and ours / floor is what ours costs on top of the simulator.
 */
import { check, REDIRECTS } from "./client.mjs";
import { runPool } from "./pool.mjs";

/*
 * Hop-by-hop headers and the date belong to the connection, not to the
 * answer; so does Content-Encoding, which the simulator adds as Cloudflare's
 * edge would (gzip for a client that accepts it, on a response with no or a
 * compressible Content-Type). Replayed, it told the simulator the floor's
 * answer was compressed already, and the floor skipped the compression ours
 * pays (an empty gzip stream on every redirect).
 */
const NOT_REPLAYED = new Set(["connection", "keep-alive", "transfer-encoding", "date", "content-encoding"]);

/** The link of a `Link: <...>; rel="next"` header, or null. */
function nextOf(response, base) {
  const match = response.headers.get("link")?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
  return match ? new URL(match[1], base) : null;
}

/**
 * Records the answers of `source` (an instance of ours) to the requests a
 * workload's `floor` names. A request spec is { method, target, headers?,
 * object?: { key, layout, bytes }, walk? }: with `object`, a GET that
 * answers a redirect is followed and the blob's answer (direct or final hop)
 * is recorded without its body, which the floor reads from R2 under `key`;
 * with `walk`, Link headers are followed to the last page.
 */
class Recorder {
  entries = new Map();
  objects = new Map();

  constructor(floorBase) {
    this.floorBase = floorBase;
  }

  async record(sourceBase, spec) {
    for (const keep of [false, true]) await this.#answers(sourceBase, spec, keep);
  }

  /**
   * Makes the requests of `spec`, keeping the answers if `keep`. Recorded the
   * second time: the rounds time ours warm, where a manifest by digest or a
   * blob it found before is answered without a D1 query, and the floor
   * replays that, not what a first request cost.
   */
  async #answers(sourceBase, spec, keep) {
    const { method = "GET", headers = {}, object, walk } = spec;
    let target = new URL(spec.target, sourceBase);
    while (target) {
      const response = await fetch(target, { method, headers, redirect: "manual" });
      const entry = { method, path: `${target.pathname}${target.search}`, status: response.status, headers: this.#headers(response, sourceBase), body: null, object: null };
      if (object && REDIRECTS.includes(response.status)) {
        entry.body = await this.#body(response);
        if (keep) this.#add(entry);
        target = new URL(response.headers.get("location"), target);
        check(target.origin === new URL(sourceBase).origin, `floor: ours redirects to another origin (${target.origin}); the floor cannot stand in for it`);
        continue;
      }
      check(response.status >= 200 && response.status < 300, `floor: recording ${method} ${target} from ours answered ${response.status}`);
      if (object && method === "GET") {
        // The blob's bytes come from the floor's own R2 object, not from the recording.
        await response.body?.cancel();
        entry.object = object.key;
        if (keep) this.objects.set(object.key, object);
      } else {
        entry.body = await this.#body(response);
      }
      if (keep) this.#add(entry);
      target = walk ? nextOf(response, target) : null;
    }
  }

  /** One answer per request: two workloads may share one (a blob GET, say), but not disagree on it. */
  #add(entry) {
    const key = `${entry.method} ${entry.path}`;
    const known = this.entries.get(key);
    check(!known || (known.status === entry.status && known.object === entry.object), `floor: two different answers recorded for ${key}`);
    this.entries.set(key, entry);
  }

  /** Ours' headers, any absolute URL into ours (a Location, a Link) pointed at the floor instead. */
  #headers(response, sourceBase) {
    const source = new URL(sourceBase).origin;
    const floor = new URL(this.floorBase).origin;
    return [...response.headers].filter(([name]) => !NOT_REPLAYED.has(name)).map(([name, value]) => [name, value.replaceAll(source, floor)]);
  }

  async #body(response) {
    const bytes = Buffer.from(await response.arrayBuffer());
    return bytes.length > 0 ? bytes.toString("base64") : null;
  }
}

async function put(floorBase, path, body) {
  const response = await fetch(new URL(path, floorBase), { method: "PUT", body });
  const text = await response.text();
  check(response.status === 201, `floor: PUT ${path} answered ${response.status}: ${text.slice(0, 300)}`);
}

/**
 * Records every selected workload's twin from the instance of ours it runs
 * on, stores the blobs in the floor's R2 in the layout ours has them in, and
 * hands the answers to the floor. Blobs are stored before any round changes
 * the shared big buffer (see variantOf).
 */
export async function prepareFloor({ floor, workloads, context, instances, log }) {
  const recorder = new Recorder(floor.baseUrl);
  for (const workload of workloads) {
    const source = instances[workload.instance ?? "ours"];
    if (!workload.floor || !source) continue;
    for (const spec of workload.floor(context)) await recorder.record(source.baseUrl, spec);
  }
  const objects = [...recorder.objects.values()];
  const entries = [...recorder.entries.values()];
  log(`floor: ${entries.length} answers recorded, ${objects.length} objects to store`);
  await runPool({ count: objects.length, concurrency: 4, task: (i) => put(floor.baseUrl, `/__floor/objects/${objects[i].layout}/${objects[i].key}`, objects[i].bytes) }).then((pool) => {
    if (pool.failures.length > 0) throw pool.failures[0];
  });
  // In batches, so no request body grows with the number of tags.
  for (let start = 0; start < entries.length; start += 200) {
    await put(floor.baseUrl, "/__floor/responses", JSON.stringify(entries.slice(start, start + 200)));
  }
}
