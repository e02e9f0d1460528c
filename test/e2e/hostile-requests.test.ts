import { describe, expect, inject, it } from "vitest";
import { registryFetch, sha256, uniqueRepo } from "./clients";
import { sendRaw, type RawResponse } from "./raw-http";

/** wrangler dev's own port, as `npm start` serves the registry. */
const registry = inject("registry");
/** The Worker's listener inside `npm start`, which wrangler's dev proxy forwards to. */
const workerOrigin = inject("workerOrigin");

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const SOME_DIGEST = sha256("not pushed");

async function openUpload(repo: string): Promise<string> {
  const response = await registryFetch(registry, `/v2/${repo}/blobs/uploads/`, { method: "POST" });
  expect(response.status).toBe(202);
  return response.headers.get("Location")!;
}

function expectOciError(response: RawResponse, status: number, code: string): void {
  expect(response.status, response.body).toBe(status);
  expect(response.headers["content-type"]).toBe("application/json");
  const body = JSON.parse(response.body) as { errors: { code: string; message: string }[] };
  expect(body.errors[0]?.code).toBe(code);
}

/** A request whose body breaks off; `upload` is a fresh upload's Location in `repo`. */
interface BrokenBodyCase {
  name: string;
  request: (repo: string, upload: string) => string;
}

const head = (line: string, ...headers: string[]) => `${line} HTTP/1.1\r\nHost: registry\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n`;

const BROKEN_BODIES: BrokenBodyCase[] = [
  { name: "a PATCH shorter than its Content-Length", request: (_, upload) => head(`PATCH ${upload}`, "Content-Length: 1000") + "x".repeat(100) },
  { name: "a PATCH with a malformed chunk size", request: (_, upload) => head(`PATCH ${upload}`, "Transfer-Encoding: chunked") + "zz\r\nabc\r\n" },
  { name: "a PATCH whose chunked body stops mid-chunk", request: (_, upload) => head(`PATCH ${upload}`, "Transfer-Encoding: chunked") + "10\r\nabc" },
  { name: "a completing PUT shorter than its Content-Length", request: (_, upload) => head(`PUT ${upload}?digest=${SOME_DIGEST}`, "Content-Length: 1000") + "x".repeat(100) },
  { name: "a monolithic POST shorter than its Content-Length", request: (repo) => head(`POST /v2/${repo}/blobs/uploads/?digest=${SOME_DIGEST}`, "Content-Length: 1000") + "x".repeat(100) },
  { name: "a manifest PUT shorter than its Content-Length", request: (repo) => head(`PUT /v2/${repo}/manifests/v1`, `Content-Type: ${MANIFEST}`, "Content-Length: 1000") + '{"schemaVersion":2' },
  { name: "a manifest PUT with a malformed chunk size", request: (repo) => head(`PUT /v2/${repo}/manifests/v1`, `Content-Type: ${MANIFEST}`, "Transfer-Encoding: chunked") + "zz\r\n{}\r\n" },
];

/** Nothing of the request is stored: the upload holds no byte, the repository no blob, manifest or tag. */
async function expectNothingStored(repo: string, upload: string): Promise<void> {
  const status = await registryFetch(registry, upload);
  expect(status.status).toBe(204);
  expect(status.headers.get("Range")).toBe("0-0");
  expect((await registryFetch(registry, `/v2/${repo}/blobs/${SOME_DIGEST}`, { method: "HEAD" })).status).toBe(404);
  expect((await registryFetch(registry, `/v2/${repo}/manifests/v1`, { method: "HEAD" })).status).toBe(404);
  expect((await registryFetch(registry, `/v2/${repo}/tags/list`)).status).toBe(404);
}

describe("a request body that breaks off, at the Worker", () => {
  it.each(BROKEN_BODIES.map((c) => [c.name, c] as const))("%s is 400 SIZE_INVALID with the OCI error body, and stores nothing", async (_, c) => {
    const repo = uniqueRepo("broken-body");
    const upload = await openUpload(repo);
    expectOciError(await sendRaw(workerOrigin, c.request(repo, upload)), 400, "SIZE_INVALID");
    await expectNothingStored(repo, upload);
  });
});

describe("a request body that breaks off, through wrangler dev's proxy", () => {
  // wrangler's dev proxy forwards the body to the Worker and, when it breaks, answers 500 itself
  // ("Network connection lost") whatever the Worker says; what the registry guarantees is below.
  it.each(BROKEN_BODIES.map((c) => [c.name, c] as const))("%s stores nothing, and the registry goes on serving", async (_, c) => {
    const repo = uniqueRepo("broken-body-proxied");
    const upload = await openUpload(repo);
    expect((await sendRaw(registry, c.request(repo, upload))).status).not.toBeLessThan(400);
    await expectNothingStored(repo, upload);
    expect((await registryFetch(registry, "/v2/")).status).toBe(200);
  });
});

describe("malformed paths and headers, through npm start", () => {
  it.each([
    ["GET of the uploads collection without an upload id", "GET /v2/hostile/a/blobs/uploads/", 404, "BLOB_UPLOAD_UNKNOWN"],
    ["DELETE of the uploads collection without an upload id", "DELETE /v2/hostile/a/blobs/uploads/", 404, "BLOB_UPLOAD_UNKNOWN"],
    // The runtime resolves the dot segment first: what arrives is a blob path without a digest.
    ["an upload id that is a dot segment", "GET /v2/hostile/a/blobs/uploads/..", 400, "DIGEST_INVALID"],
    ["an empty repository name", "GET /v2//manifests/x", 400, "NAME_INVALID"],
    ["an empty repository name for an upload", "POST /v2//blobs/uploads/", 400, "NAME_INVALID"],
    ["an empty manifest reference", "GET /v2/hostile/a/manifests/", 400, "TAG_INVALID"],
    ["a malformed tag", "PUT /v2/hostile/a/manifests/-v1", 400, "TAG_INVALID"],
  ])("%s is a 4xx with the most specific OCI code", async (_, line, status, code) => {
    const method = line.split(" ")[0];
    const request = method === "PUT" ? head(line, `Content-Type: ${MANIFEST}`, "Content-Length: 2") + "{}" : head(line);
    expectOciError(await sendRaw(registry, request), status, code);
  });

  it("serves a request that carries 128 KiB of headers it does not read", async () => {
    const repo = uniqueRepo("huge-headers");
    const response = await sendRaw(registry, head(`GET /v2/${repo}/tags/list`, `X-Padding: ${"a".repeat(128 * 1024)}`));
    expectOciError(response, 404, "NAME_UNKNOWN");
  });
});
