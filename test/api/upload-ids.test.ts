import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RepositoryName } from "../../src/oci/names";
import { issueUploadId } from "../../src/storage/upload-id";
import { digestOf, errorCode, fetchRegistry, openUpload, randomBytes, uniqueRepo, uploadObjectId, withDigest } from "./client";

const HOUR = 60 * 60 * 1000;

async function expectUnknown(response: Promise<Response>): Promise<void> {
  const answer = await response;
  expect(answer.status).toBe(404);
  expect(await errorCode(answer)).toBe("BLOB_UPLOAD_UNKNOWN");
}

describe("an upload id belongs to the repository whose POST issued it", () => {
  it("is unknown under another repository, before the upload's first request too, and stores nothing there", async () => {
    const [issuer, other] = [uniqueRepo(), uniqueRepo()];
    const location = await openUpload(issuer);
    const elsewhere = location.replace(issuer, other);
    const bytes = randomBytes(2000);
    const digest = await digestOf(bytes);
    await expectUnknown(fetchRegistry(elsewhere, { method: "PATCH", body: bytes }));
    await expectUnknown(fetchRegistry(withDigest(elsewhere, digest), { method: "PUT", body: bytes }));
    await expectUnknown(fetchRegistry(elsewhere));
    await expectUnknown(fetchRegistry(elsewhere, { method: "DELETE" }));
    expect((await fetchRegistry(`/v2/${other}/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
    expect((await env.BLOBS.list({ prefix: `blobs/${uploadObjectId(location)}` })).objects).toEqual([]);

    // The issuing repository still has its upload, untouched.
    const put = await fetchRegistry(withDigest(location, digest), { method: "PUT", body: bytes });
    expect(put.status).toBe(201);
    expect((await fetchRegistry(`/v2/${issuer}/blobs/${digest}`, { method: "HEAD" })).status).toBe(200);
  });

  it("is unknown once altered, and when issued more than a day ago", async () => {
    const repo = uniqueRepo();
    const location = await openUpload(repo);
    const id = location.split("/").at(-1)!;
    const altered = `${id.slice(0, -1)}${id.endsWith("0") ? "1" : "0"}`;
    await expectUnknown(fetchRegistry(location.replace(id, altered)));

    const objectId = env.UPLOADS.newUniqueId().toString();
    const stale = await issueUploadId(env.UPLOAD_SECRET!, repo as RepositoryName, objectId, Date.now() - 25 * HOUR);
    await expectUnknown(fetchRegistry(`/v2/${repo}/blobs/uploads/${stale}`, { method: "PATCH", body: randomBytes(10) }));
    const fresh = await issueUploadId(env.UPLOAD_SECRET!, repo as RepositoryName, objectId, Date.now() - 23 * HOUR);
    expect((await fetchRegistry(`/v2/${repo}/blobs/uploads/${fresh}`)).status).toBe(204);
  });
});
