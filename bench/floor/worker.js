/**
 * The floor under our registry in `wrangler dev`: a Worker with no work of its
 * own, run by the same wrangler, workerd and R2 simulator. The bench records
 * our registry's answer to each request a workload makes (status, headers,
 * body) and this Worker replays it: the same size and headers from memory, or,
 * where ours streams a blob (a direct GET, the final hop of a redirect), one R2
 * get of the same bytes stored the same way. Where ours queried D1, it makes as
 * many queries reading as many rows, and each brings back one row with its
 * share of the bytes ours' queries brought (ours' Registry-Cost header says
 * how many of each; SQLite joins a page's tags or descriptors into one row):
 * the database round trips a request needs, and the bytes they bring, are the
 * simulator's cost, not the registry's own work.
 * What it cannot beat, the registry cannot either, so each workload of ours
 * has its twin here.
 *
 *   PUT /__floor/responses               JSON [{ method, path, status, headers: [[name, value]],
 *                                        body: base64 | null, object: R2 key | null }]: answers to replay
 *                                        (with the D1 queries their registry-cost header counts),
 *                                        kept in memory and in R2 (a reloaded isolate reads them back)
 *   PUT /__floor/objects/<layout>/<key>  stores the body under <key>: layout "single" with one put,
 *                                        "parts" in 8 MiB multipart parts (what chunked uploads produce)
 *   <method> <path>                      the recorded answer; GET /v2/ answers `{}` until one is recorded
 */
const PART_SIZE = 8 * 1024 * 1024;

const RECORDINGS = "__floor/responses/";

/** "GET /v2/x?n=1" → the recorded answer. Module state lives as long as the isolate. */
const responses = new Map();
/** This isolate reading back what earlier ones recorded, once: wrangler dev may reload the worker mid-run. */
let restoring = null;
/** The table the D1 queries read, created once per isolate. */
let table = null;
/** Rows the table holds: enough for ours' largest page, 10,000 tags read as 10,001 rows. */
const MAX_ROWS = 20_000;

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const key = `${request.method} ${url.pathname}${url.search}`;
    if (!responses.has(key) && !url.pathname.startsWith("/__floor/")) await (restoring ??= restore(env.BLOBS));
    const recorded = responses.get(key);
    if (recorded) {
      // Through a D1 session, as ours reads (the Sessions API, for read replicas).
      const session = recorded.queries > 0 ? env.DB.withSession("first-unconstrained") : null;
      for (let i = 0; i < recorded.queries; i++) await query(env.DB, session, Math.ceil(recorded.rowsRead / recorded.queries), recorded.queryBytes);
      if (recorded.object === null) return new Response(recorded.body, { status: recorded.status, headers: recorded.headers });
      const object = await env.BLOBS.get(recorded.object);
      if (!object) return new Response(`floor: object ${recorded.object} was never stored`, { status: 500 });
      return new Response(object.body, { status: recorded.status, headers: recorded.headers });
    }
    if (request.method === "PUT" && url.pathname === "/__floor/responses") {
      const text = await request.text();
      await env.BLOBS.put(`${RECORDINGS}${crypto.randomUUID()}`, text);
      record(JSON.parse(text));
      return new Response(null, { status: 201 });
    }
    const seed = url.pathname.match(/^\/__floor\/objects\/(single|parts)\/(.+)$/);
    if (request.method === "PUT" && seed) {
      if (seed[1] === "single") await env.BLOBS.put(seed[2], request.body);
      else await putParts(env.BLOBS, seed[2], request.body);
      return new Response(null, { status: 201 });
    }
    // The bench waits for GET /v2/ before recording anything.
    if (request.method === "GET" && url.pathname === "/v2/") return Response.json({}, { headers: { "Docker-Distribution-API-Version": "registry/2.0" } });
    return new Response(`floor: nothing recorded for ${request.method} ${url.pathname}${url.search}`, { status: 404 });
  },
};

function record(entries) {
  for (const { method, path, status, headers, body, object } of entries) {
    const bytes = body === null ? null : bytesOf(body);
    const cost = d1CostOf(headers);
    // What ours' queries brought, spread over the queries: a page of 1,000 referrer descriptors is one query bringing 260 KB.
    // Ours before the meter counted it (bench:ab of an older checkout) brought its answer's bytes.
    const resultBytes = cost.resultBytes ?? bytes?.length ?? 0;
    const queryBytes = cost.queries > 0 ? Math.ceil(resultBytes / cost.queries) : 0;
    responses.set(`${method} ${path}`, { status, headers, body: bytes, object, ...cost, queryBytes });
  }
}

/** The D1 queries, rows read and result bytes that ours' Registry-Cost header counted. */
function d1CostOf(headers) {
  const header = headers.find(([name]) => name.toLowerCase() === "registry-cost")?.[1];
  const cost = header ? JSON.parse(header) : {};
  return { queries: cost.d1Queries ?? 0, rowsRead: cost.d1RowsRead ?? 0, resultBytes: cost.d1ResultBytes };
}

/**
 * One query reading `rows` rows (at least one) of short strings, answering one
 * row of `bytes` (at least a dozen): the greatest string, padded by SQLite. So
 * SQLite reads as many rows as ours' query, and one row brings as many bytes
 * to the Worker.
 */
async function query(db, session, rows, bytes) {
  await (table ??= db.batch([
    db.prepare("CREATE TABLE IF NOT EXISTS floor_rows (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"),
    db.prepare(`INSERT OR IGNORE INTO floor_rows (k, v)
      WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < ${MAX_ROWS}) SELECT k, 'floor-row-' || k FROM n`),
  ]));
  await session
    // hex(zeroblob(n)) is 2n zeros: padding made in SQLite, not bound (printf's precision is capped at 100,000 here).
    .prepare("SELECT m || substr(replace(hex(zeroblob((?2 + 1) / 2)), '0', 'x'), 1, max(0, ?2 - length(m))) AS v FROM (SELECT max(v) AS m FROM floor_rows WHERE k <= ?1)")
    .bind(Math.min(Math.max(rows, 1), MAX_ROWS), bytes)
    .all();
}

async function restore(bucket) {
  let cursor;
  do {
    const listing = await bucket.list({ prefix: RECORDINGS, cursor });
    for (const { key } of listing.objects) record(await (await bucket.get(key)).json());
    cursor = listing.truncated ? listing.cursor : undefined;
  } while (cursor);
}

function bytesOf(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function putParts(bucket, key, body) {
  const upload = await bucket.createMultipartUpload(key);
  const parts = [];
  let buffer = new Uint8Array(PART_SIZE);
  let filled = 0;
  const flush = async () => {
    parts.push(await upload.uploadPart(parts.length + 1, buffer.subarray(0, filled)));
    buffer = new Uint8Array(PART_SIZE);
    filled = 0;
  };
  for await (const chunk of body) {
    for (let offset = 0; offset < chunk.length; ) {
      const take = Math.min(PART_SIZE - filled, chunk.length - offset);
      buffer.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === PART_SIZE) await flush();
    }
  }
  if (filled > 0) await flush();
  await upload.complete(parts);
}
