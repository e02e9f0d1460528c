import { beforeAll, describe, expect, it } from "vitest";
import { digestOf, fetchRegistry, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, openUpload, pushBlob, pushImage, putManifest, randomBytes, uniqueRepo } from "./client";

/** What the table's requests may aim at: a repository holding a tagged image, and an open upload. */
interface Fixture {
  repo: string;
  blob: string;
  manifest: Record<string, unknown>;
  manifestDigest: string;
  upload: string;
}

interface Case {
  name: string;
  method: string;
  path: (f: Fixture) => string;
  headers?: Record<string, string>;
  body?: (f: Fixture) => BodyInit;
  status: number;
  /** The OCI error code; undefined for HEAD, which has no body. */
  code: string | undefined;
}

const ZERO = `sha256:${"0".repeat(64)}`;
const manifestPut = (body: (f: Fixture) => BodyInit, contentType = OCI_MANIFEST) => ({ method: "PUT", headers: { "Content-Type": contentType }, body });

const CASES: Case[] = [
  // Repository names
  { name: "uppercase name", method: "GET", path: () => "/v2/Bad/tags/list", status: 400, code: "NAME_INVALID" },
  { name: "empty path component", method: "GET", path: () => "/v2/a//b/tags/list", status: 400, code: "NAME_INVALID" },
  { name: "leading separator", method: "GET", path: () => "/v2/-a/tags/list", status: 400, code: "NAME_INVALID" },
  { name: "trailing separator", method: "GET", path: (f) => `/v2/a./blobs/${f.blob}`, status: 400, code: "NAME_INVALID" },
  { name: "encoded path traversal", method: "GET", path: (f) => `/v2/..%2F..%2Fetc/blobs/${f.blob}`, status: 400, code: "NAME_INVALID" },
  { name: "traversal inside a name", method: "GET", path: (f) => `/v2/a/%2E%2E%2Fb/manifests/v1`, status: 400, code: "NAME_INVALID" },
  { name: "name longer than 255", method: "GET", path: () => `/v2/${"a".repeat(256)}/tags/list`, status: 400, code: "NAME_INVALID" },
  { name: "name with a space", method: "GET", path: () => "/v2/a%20b/tags/list", status: 400, code: "NAME_INVALID" },
  { name: "empty name, manifest GET", method: "GET", path: () => "/v2//manifests/x", status: 400, code: "NAME_INVALID" },
  { name: "empty name, manifest PUT", ...manifestPut((f) => JSON.stringify(f.manifest)), path: () => "/v2//manifests/v1", status: 400, code: "NAME_INVALID" },
  { name: "empty name, blob GET", method: "GET", path: (f) => `/v2//blobs/${f.blob}`, status: 400, code: "NAME_INVALID" },
  { name: "empty name, tags", method: "GET", path: () => "/v2//tags/list", status: 400, code: "NAME_INVALID" },
  { name: "empty name, referrers", method: "GET", path: (f) => `/v2//referrers/${f.manifestDigest}`, status: 400, code: "NAME_INVALID" },
  // Digests
  { name: "short sha256", method: "GET", path: (f) => `/v2/${f.repo}/blobs/sha256:abc`, status: 400, code: "DIGEST_INVALID" },
  { name: "unknown algorithm", method: "GET", path: (f) => `/v2/${f.repo}/blobs/md5:${"a".repeat(32)}`, status: 400, code: "DIGEST_INVALID" },
  { name: "uppercase hex", method: "GET", path: (f) => `/v2/${f.repo}/blobs/sha256:${"A".repeat(64)}`, status: 400, code: "DIGEST_INVALID" },
  { name: "sha512 of sha256 length", method: "GET", path: (f) => `/v2/${f.repo}/blobs/sha512:${"a".repeat(64)}`, status: 400, code: "DIGEST_INVALID" },
  { name: "no algorithm", method: "GET", path: (f) => `/v2/${f.repo}/blobs/${"a".repeat(64)}`, status: 400, code: "DIGEST_INVALID" },
  { name: "empty blob digest", method: "GET", path: (f) => `/v2/${f.repo}/blobs/`, status: 400, code: "DIGEST_INVALID" },
  { name: "blob DELETE with an empty digest", method: "DELETE", path: (f) => `/v2/${f.repo}/blobs/`, status: 400, code: "DIGEST_INVALID" },
  // The runtime resolves the dot segment first: this arrives as /blobs/.
  { name: "dot segment after uploads", method: "GET", path: (f) => `/v2/${f.repo}/blobs/uploads/..`, status: 400, code: "DIGEST_INVALID" },
  { name: "blob unknown", method: "GET", path: (f) => `/v2/${f.repo}/blobs/${ZERO}`, status: 404, code: "BLOB_UNKNOWN" },
  { name: "HEAD blob unknown", method: "HEAD", path: (f) => `/v2/${f.repo}/blobs/${ZERO}`, status: 404, code: undefined },
  { name: "blob DELETE with a bad digest", method: "DELETE", path: (f) => `/v2/${f.repo}/blobs/sha256:nothex`, status: 400, code: "DIGEST_INVALID" },
  { name: "blob DELETE in another repository", method: "DELETE", path: (f) => `/v2/${uniqueRepo()}/blobs/${f.blob}`, status: 404, code: "BLOB_UNKNOWN" },
  { name: "unsatisfiable Range", method: "GET", path: (f) => `/v2/${f.repo}/blobs/${f.blob}`, headers: { Range: "bytes=999999-" }, status: 416, code: "RANGE_INVALID" },
  // Upload sessions
  { name: "monolithic POST with a malformed digest", method: "POST", path: (f) => `/v2/${f.repo}/blobs/uploads/?digest=sha256:zz`, body: () => "x", status: 400, code: "DIGEST_INVALID" },
  { name: "monolithic POST with the wrong digest", method: "POST", path: (f) => `/v2/${f.repo}/blobs/uploads/?digest=${f.blob}`, body: () => "not the blob", status: 400, code: "DIGEST_INVALID" },
  { name: "unsupported digest-algorithm", method: "POST", path: (f) => `/v2/${f.repo}/blobs/uploads/?digest-algorithm=sha1`, status: 400, code: "DIGEST_INVALID" },
  { name: "mount of a malformed digest", method: "POST", path: (f) => `/v2/${f.repo}/blobs/uploads/?mount=nope&from=x`, status: 400, code: "DIGEST_INVALID" },
  { name: "upload opened under an empty name", method: "POST", path: () => "/v2//blobs/uploads/", status: 400, code: "NAME_INVALID" },
  { name: "GET of the uploads collection", method: "GET", path: (f) => `/v2/${f.repo}/blobs/uploads/`, status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
  { name: "DELETE of the uploads collection", method: "DELETE", path: (f) => `/v2/${f.repo}/blobs/uploads`, status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
  { name: "status of a made-up upload id", method: "GET", path: (f) => `/v2/${f.repo}/blobs/uploads/not-an-id`, status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
  { name: "status of a well-formed foreign id", method: "GET", path: (f) => `/v2/${f.repo}/blobs/uploads/${"0".repeat(64)}`, status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
  { name: "PATCH to an unknown upload", method: "PATCH", path: (f) => `/v2/${f.repo}/blobs/uploads/${"ab".repeat(32)}`, body: () => "x", status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
  { name: "PUT to an unknown upload", method: "PUT", path: (f) => `/v2/${f.repo}/blobs/uploads/nothing?digest=${f.blob}`, status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
  { name: "DELETE of an unknown upload", method: "DELETE", path: (f) => `/v2/${f.repo}/blobs/uploads/nothing`, status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
  { name: "upload used under another repository", method: "GET", path: (f) => f.upload.replace(f.repo, uniqueRepo()), status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
  { name: "malformed Content-Range", method: "PATCH", path: (f) => f.upload, headers: { "Content-Range": "bytes=abc" }, body: () => "x", status: 416, code: "RANGE_INVALID" },
  { name: "backwards Content-Range", method: "PATCH", path: (f) => f.upload, headers: { "Content-Range": "10-5" }, body: () => "x", status: 416, code: "RANGE_INVALID" },
  { name: "chunk after a gap", method: "PATCH", path: (f) => f.upload, headers: { "Content-Range": "5-9" }, body: () => "12345", status: 416, code: "RANGE_INVALID" },
  { name: "Content-Range and Content-Length disagree", method: "PATCH", path: (f) => f.upload, headers: { "Content-Range": "0-9" }, body: () => "12345", status: 400, code: "SIZE_INVALID" },
  { name: "PUT without a digest", method: "PUT", path: (f) => f.upload, status: 400, code: "DIGEST_INVALID" },
  { name: "PUT with a malformed digest", method: "PUT", path: (f) => `${f.upload}?digest=sha256:123`, status: 400, code: "DIGEST_INVALID" },
  // Manifests
  { name: "manifest that is not JSON", ...manifestPut(() => "{not json"), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "manifest that is a JSON array", ...manifestPut(() => "[]"), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "manifest that is not UTF-8", ...manifestPut(() => new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "schemaVersion 1", ...manifestPut((f) => JSON.stringify({ ...f.manifest, schemaVersion: 1 })), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "manifest without config", ...manifestPut((f) => JSON.stringify({ ...f.manifest, config: undefined })), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "layer with a malformed digest", ...manifestPut((f) => JSON.stringify({ ...f.manifest, layers: [{ mediaType: OCI_LAYER, digest: "sha256:1", size: 1 }] })), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "layer with a negative size", ...manifestPut((f) => JSON.stringify({ ...f.manifest, layers: [{ mediaType: OCI_LAYER, digest: f.blob, size: -1 }] })), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "layer with an invalid media type", ...manifestPut((f) => JSON.stringify({ ...f.manifest, layers: [{ mediaType: "not a type", digest: f.blob, size: 1 }] })), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "Content-Type disagrees with mediaType", ...manifestPut((f) => JSON.stringify(f.manifest), OCI_INDEX), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "unsupported schema 1 media type", ...manifestPut((f) => JSON.stringify({ ...f.manifest, mediaType: undefined }), "application/vnd.docker.distribution.manifest.v1+prettyjws"), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 400, code: "MANIFEST_INVALID" },
  { name: "manifest over 4 MiB", ...manifestPut(() => new Uint8Array(4 * 1024 * 1024 + 1).fill(0x20)), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 413, code: "SIZE_INVALID" },
  { name: "tag with a leading dash", ...manifestPut((f) => JSON.stringify(f.manifest)), path: (f) => `/v2/${f.repo}/manifests/-v1`, status: 400, code: "TAG_INVALID" },
  { name: "tag of 129 characters", ...manifestPut((f) => JSON.stringify(f.manifest)), path: (f) => `/v2/${f.repo}/manifests/${"t".repeat(129)}`, status: 400, code: "TAG_INVALID" },
  { name: "invalid ?tag=", ...manifestPut((f) => JSON.stringify(f.manifest)), path: (f) => `/v2/${f.repo}/manifests/${f.manifestDigest}?tag=bad!tag`, status: 400, code: "TAG_INVALID" },
  { name: "GET of a malformed tag", method: "GET", path: (f) => `/v2/${f.repo}/manifests/-v1`, status: 400, code: "TAG_INVALID" },
  { name: "empty reference, GET", method: "GET", path: (f) => `/v2/${f.repo}/manifests/`, status: 400, code: "TAG_INVALID" },
  { name: "empty reference, PUT", ...manifestPut((f) => JSON.stringify(f.manifest)), path: (f) => `/v2/${f.repo}/manifests/`, status: 400, code: "TAG_INVALID" },
  { name: "empty reference, DELETE", method: "DELETE", path: (f) => `/v2/${f.repo}/manifests/`, status: 400, code: "TAG_INVALID" },
  { name: "PUT by a digest the bytes do not have", ...manifestPut((f) => JSON.stringify(f.manifest) + " "), path: (f) => `/v2/${f.repo}/manifests/${f.manifestDigest}`, status: 400, code: "DIGEST_INVALID" },
  { name: "manifest referencing an unknown blob", ...manifestPut((f) => JSON.stringify({ ...f.manifest, layers: [{ mediaType: OCI_LAYER, digest: ZERO, size: 5 }] })), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 404, code: "MANIFEST_BLOB_UNKNOWN" },
  { name: "index referencing an unknown manifest", ...manifestPut(() => JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: ZERO, size: 5 }] }), OCI_INDEX), path: (f) => `/v2/${f.repo}/manifests/v1`, status: 404, code: "MANIFEST_BLOB_UNKNOWN" },
  { name: "manifest unknown", method: "GET", path: (f) => `/v2/${f.repo}/manifests/nope`, status: 404, code: "MANIFEST_UNKNOWN" },
  { name: "manifest reference with a malformed digest", method: "GET", path: (f) => `/v2/${f.repo}/manifests/sha256:short`, status: 400, code: "DIGEST_INVALID" },
  { name: "DELETE of an unknown tag", method: "DELETE", path: (f) => `/v2/${f.repo}/manifests/nope`, status: 404, code: "MANIFEST_UNKNOWN" },
  { name: "DELETE of a manifest in another repository", method: "DELETE", path: (f) => `/v2/${uniqueRepo()}/manifests/${f.manifestDigest}`, status: 404, code: "MANIFEST_UNKNOWN" },
  // Listings
  { name: "non-numeric n", method: "GET", path: (f) => `/v2/${f.repo}/tags/list?n=abc`, status: 400, code: "PAGINATION_NUMBER_INVALID" },
  { name: "negative n", method: "GET", path: (f) => `/v2/${f.repo}/tags/list?n=-1`, status: 400, code: "PAGINATION_NUMBER_INVALID" },
  { name: "fractional n", method: "GET", path: (f) => `/v2/${f.repo}/tags/list?n=1.5`, status: 400, code: "PAGINATION_NUMBER_INVALID" },
  { name: "last that is no tag", method: "GET", path: (f) => `/v2/${f.repo}/tags/list?last=bad!tag`, status: 400, code: "TAG_INVALID" },
  { name: "tags of an unknown repository", method: "GET", path: () => `/v2/${uniqueRepo()}/tags/list`, status: 404, code: "NAME_UNKNOWN" },
  { name: "referrers of a malformed digest", method: "GET", path: (f) => `/v2/${f.repo}/referrers/sha256:1`, status: 400, code: "DIGEST_INVALID" },
  { name: "referrers of an empty digest", method: "GET", path: (f) => `/v2/${f.repo}/referrers/`, status: 400, code: "DIGEST_INVALID" },
  { name: "referrers with a non-numeric n", method: "GET", path: (f) => `/v2/${f.repo}/referrers/${f.manifestDigest}?n=ten`, status: 400, code: "PAGINATION_NUMBER_INVALID" },
  { name: "referrers with a last that is no digest", method: "GET", path: (f) => `/v2/${f.repo}/referrers/${f.manifestDigest}?last=v1`, status: 400, code: "DIGEST_INVALID" },
  { name: "catalog with a non-numeric n", method: "GET", path: () => "/v2/_catalog?n=x", status: 400, code: "PAGINATION_NUMBER_INVALID" },
  { name: "catalog with a last that is no name", method: "GET", path: () => "/v2/_catalog?last=Not/A/Name", status: 400, code: "NAME_INVALID" },
  { name: "unknown endpoint", method: "GET", path: (f) => `/v2/${f.repo}/nothing`, status: 404, code: "UNSUPPORTED" },
];

/** Everything a client could read back about the fixture. */
async function snapshot(f: Fixture) {
  const read = async (path: string) => {
    const response = await fetchRegistry(path);
    return `${response.status} ${await digestOf(new Uint8Array(await response.arrayBuffer()))}`;
  };
  return {
    tags: await read(`/v2/${f.repo}/tags/list`),
    manifestByTag: await read(`/v2/${f.repo}/manifests/v1`),
    manifestByDigest: await read(`/v2/${f.repo}/manifests/${f.manifestDigest}`),
    blob: await read(`/v2/${f.repo}/blobs/${f.blob}`),
    referrers: await read(`/v2/${f.repo}/referrers/${f.manifestDigest}`),
    upload: (await fetchRegistry(f.upload)).headers.get("Range"),
  };
}

describe("malformed requests", () => {
  let fixture: Fixture;
  let before: Awaited<ReturnType<typeof snapshot>>;

  beforeAll(async () => {
    const repo = uniqueRepo("malformed");
    const { manifest, bytes } = await pushImage(repo);
    await putManifest(repo, "v1", bytes);
    const blob = await pushBlob(repo, randomBytes(64));
    fixture = { repo, blob, manifest, manifestDigest: await digestOf(bytes), upload: await openUpload(repo) };
    before = await snapshot(fixture);
  });

  it("has at least 40 cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s", async (_, c) => {
    const response = await fetchRegistry(c.path(fixture), {
      method: c.method,
      ...(c.headers ? { headers: c.headers } : {}),
      ...(c.body ? { body: c.body(fixture) } : {}),
    });
    expect(response.status).toBe(c.status);
    if (c.code === undefined) return;
    expect(response.headers.get("Content-Type")).toBe("application/json");
    const body = (await response.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]!.code).toBe(c.code);
    expect(body.errors[0]!.message).toBeTypeOf("string");
  });

  it("leaves every stored blob, manifest, tag, referrer and upload as it was", async () => {
    expect(await snapshot(fixture)).toEqual(before);
  });
});

