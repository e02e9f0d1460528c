import { afterEach, describe, expect, it, vi } from "vitest";
import { descriptorOf, digestOf, fetchRegistry, fetchWithEnv, firstError, json, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, pushBlob, pushImage, putManifest, uniqueRepo } from "./client";

afterEach(() => {
  vi.restoreAllMocks();
});

/** A layer the repository need not hold: non-distributable, so its bytes are never pushed. */
function foreignLayer(n: number) {
  return { mediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", digest: `sha256:${n.toString(16).padStart(64, "0")}`, size: 1 };
}

const SUBJECT = { mediaType: OCI_MANIFEST, digest: `sha256:${"5".repeat(64)}`, size: 100 };

/** A repository holding the empty config, and an artifact manifest built on it. */
async function artifacts() {
  const repo = uniqueRepo();
  const empty = json({});
  await pushBlob(repo, empty);
  const config = { ...(await descriptorOf(empty, OCI_EMPTY)), data: "e30=" };
  const artifact = (fields: Record<string, unknown>) => json({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: "application/vnd.example.sig", config, layers: [], ...fields });
  return { repo, artifact };
}

describe("MAX_MANIFEST_DESCRIPTORS: 1000 descriptors per manifest by default", () => {
  it("accepts config, 998 layers and a subject; one layer more is 400 MANIFEST_INVALID naming the limit", async () => {
    const { repo, artifact } = await artifacts();
    const layers = Array.from({ length: 999 }, (_, n) => foreignLayer(n));
    expect((await putManifest(repo, "edge", artifact({ layers: layers.slice(0, 998), subject: SUBJECT }))).status).toBe(201);
    const refused = await putManifest(repo, "over", artifact({ layers, subject: SUBJECT }));
    expect(refused.status).toBe(400);
    const error = await firstError(refused);
    expect(error?.code).toBe("MANIFEST_INVALID");
    expect(error?.detail).toContain("MAX_MANIFEST_DESCRIPTORS = 1000");
  });

  it("counts an index's manifests: with the var at 2, an index of two is accepted and one of three refused", async () => {
    const { repo, artifact } = await artifacts();
    const children = [];
    for (let n = 0; n < 3; n++) {
      const bytes = artifact({ layers: [foreignLayer(n)] });
      expect((await putManifest(repo, await digestOf(bytes), bytes)).status).toBe(201);
      children.push(await descriptorOf(bytes, OCI_MANIFEST));
    }
    const putIndex = (manifests: unknown[]) =>
      fetchWithEnv({ MAX_MANIFEST_DESCRIPTORS: "2" }, `/v2/${repo}/manifests/multi`, {
        method: "PUT",
        headers: { "Content-Type": OCI_INDEX },
        body: json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }),
      });
    expect((await putIndex(children.slice(0, 2))).status).toBe(201);
    const refused = await putIndex(children);
    expect(refused.status).toBe(400);
    expect((await firstError(refused))?.detail).toContain("MAX_MANIFEST_DESCRIPTORS = 2");
  });
});

describe("MAX_ANNOTATION_BYTES: 65536 UTF-8 bytes of a referrer's annotations by default", () => {
  // "€" is 3 bytes in UTF-8 but 1 in a JS string's length.
  const cases: [string, Record<string, string>, number][] = [
    ["ASCII, exactly at the limit", { a: "x".repeat(65535) }, 201],
    ["ASCII, one byte over", { a: "x".repeat(65536) }, 400],
    ["multi-byte, exactly at the limit", { a: "€".repeat(21845) }, 201],
    ["multi-byte, one byte over (21,847 by JS length)", { a: "€".repeat(21845) + "x" }, 400],
  ];
  it.each(cases)("%s", async (_, annotations, status) => {
    const { repo, artifact } = await artifacts();
    const response = await putManifest(repo, "sig", artifact({ subject: SUBJECT, annotations }));
    expect(response.status).toBe(status);
    if (status === 201) return;
    const error = await firstError(response);
    expect(error?.code).toBe("MANIFEST_INVALID");
    expect(error?.detail).toContain("MAX_ANNOTATION_BYTES = 65536");
  });
});

describe("MAX_REFERRERS_PAGE_BYTES: referrers pages of at most 4 MiB of JSON by default", () => {
  it("cuts a page before its JSON passes the limit and links to the rest", async () => {
    const { repo, artifact } = await artifacts();
    for (let n = 0; n < 3; n++) {
      // Characters of two, three and four UTF-8 bytes: the limit is in bytes, not characters.
      const bytes = artifact({ subject: SUBJECT, annotations: { note: `${"é€😀".repeat(50)}${String(n).repeat(1000)}` } });
      expect((await putManifest(repo, await digestOf(bytes), bytes)).status).toBe(201);
    }
    const path = `/v2/${repo}/referrers/${SUBJECT.digest}`;
    const whole = new Uint8Array(await (await fetchRegistry(path)).arrayBuffer());
    const listed = (JSON.parse(new TextDecoder().decode(whole)) as { manifests: { digest: string }[] }).manifests;
    expect(listed).toHaveLength(3);

    const atLimit = await fetchWithEnv({ MAX_REFERRERS_PAGE_BYTES: String(whole.length) }, path);
    expect(new Uint8Array(await atLimit.arrayBuffer())).toEqual(whole);
    expect(atLimit.headers.get("Link")).toBeNull();

    const limits = { MAX_REFERRERS_PAGE_BYTES: String(whole.length - 1) };
    const cut = await fetchWithEnv(limits, path);
    const first = new Uint8Array(await cut.arrayBuffer());
    expect(first.length).toBeLessThan(whole.length);
    expect((JSON.parse(new TextDecoder().decode(first)) as { manifests: unknown[] }).manifests).toEqual(listed.slice(0, 2));
    const next = cut.headers.get("Link")?.match(/^<([^>]+)>; rel="next"$/)?.[1];
    const rest = (await (await fetchWithEnv(limits, next!)).json()) as { manifests: unknown[] };
    expect(rest.manifests).toEqual(listed.slice(2));
  });

  it("holds at least one descriptor, however large, so a client following the Link moves on", async () => {
    const { repo, artifact } = await artifacts();
    for (let n = 0; n < 2; n++) {
      const bytes = artifact({ subject: SUBJECT, annotations: { note: String(n).repeat(1000) } });
      expect((await putManifest(repo, await digestOf(bytes), bytes)).status).toBe(201);
    }
    const limits = { MAX_REFERRERS_PAGE_BYTES: "100" };
    const first = await fetchWithEnv(limits, `/v2/${repo}/referrers/${SUBJECT.digest}`);
    expect(((await first.json()) as { manifests: unknown[] }).manifests).toHaveLength(1);
    const next = first.headers.get("Link")?.match(/^<([^>]+)>; rel="next"$/)?.[1];
    const second = await fetchWithEnv(limits, next!);
    expect(((await second.json()) as { manifests: unknown[] }).manifests).toHaveLength(1);
    expect(second.headers.get("Link")).toBeNull();
  });
});

describe("the limits' vars", () => {
  it("take their defaults when unset: MAX_MANIFEST_BYTES unset still refuses 4 MiB + 1 with 413", async () => {
    const repo = uniqueRepo();
    const { manifest } = await pushImage(repo);
    const padding = json({ ...manifest, annotations: { pad: "" } }).length;
    const body = json({ ...manifest, annotations: { pad: "x".repeat(4 * 1024 * 1024 + 1 - padding) } });
    const response = await fetchWithEnv({ MAX_MANIFEST_BYTES: undefined }, `/v2/${repo}/manifests/big`, { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body });
    expect(response.status).toBe(413);
    const error = await firstError(response);
    expect(error?.code).toBe("SIZE_INVALID");
    expect(error?.detail).toContain("MAX_MANIFEST_BYTES = 4194304");
  });

  it.each([
    ["MAX_MANIFEST_DESCRIPTORS", "lots"],
    ["MAX_REFERRERS_PAGE_BYTES", "0"],
    ["MAX_ANNOTATION_BYTES", "1048576"],
  ])("refuse to run with %s = %s: 500, and the log names the var", async (name, value) => {
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await fetchWithEnv({ [name]: value }, `/v2/${uniqueRepo()}/tags/list`);
    expect(response.status).toBe(500);
    expect(String(log.mock.calls[0]?.[0])).toContain(name);
  });
});
