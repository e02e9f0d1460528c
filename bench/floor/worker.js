/**
 * The floor under our registry in `wrangler dev`: a Worker with no work of its
 * own, run by the same wrangler, workerd and R2 simulator. What it cannot beat,
 * the registry cannot either, so the bench measures it beside ours.
 *
 *   GET /v2/                          answers `{}` at once
 *   PUT /seed/<layout>/<digest>       stores the body: layout "single" with one put,
 *                                     "parts" in 8 MiB multipart parts (what uploads produce)
 *   GET /v2/<layout>/blobs/<digest>   streams that object back
 */
const PART_SIZE = 8 * 1024 * 1024;

export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname.split("/").filter(Boolean);
    // The header the bench client checks on /v2/, as a registry sends it.
    if (request.method === "GET" && path.length === 1 && path[0] === "v2") return Response.json({}, { headers: { "Docker-Distribution-API-Version": "registry/2.0" } });
    if (request.method === "PUT" && path[0] === "seed" && path.length === 3) {
      const [, layout, digest] = path;
      if (layout === "single") await env.BLOBS.put(`${layout}/${digest}`, request.body);
      else await putParts(env.BLOBS, `${layout}/${digest}`, request.body);
      return new Response(null, { status: 201 });
    }
    if (request.method === "GET" && path[0] === "v2" && path[2] === "blobs" && path.length === 4) {
      const object = await env.BLOBS.get(`${path[1]}/${path[3]}`);
      if (!object) return new Response(null, { status: 404 });
      return new Response(object.body, { headers: { "Content-Type": "application/octet-stream", "Content-Length": String(object.size) } });
    }
    return new Response(null, { status: 404 });
  },
};

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
