import { applyD1Migrations, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { digestOf, fetchRegistry, json, OCI_INDEX, OCI_MANIFEST, pushBlob, pushImage, putManifest, uniqueRepo } from "./client";

interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }[];
}

type Referrer = { digest: string; size: number; artifactType: string; annotations: Record<string, string> };

/** Pushes an image and `count` referrers to it, alternating two artifact types; `add` pushes one more. */
async function subjectWithReferrers(count: number) {
  const repo = uniqueRepo();
  const image = await pushImage(repo);
  const subject = await digestOf(image.bytes);
  await putManifest(repo, subject, image.bytes);
  const empty = json({});
  await pushBlob(repo, empty);
  const add = async (i: number): Promise<Referrer> => {
    const artifactType = i % 2 === 0 ? "application/vnd.example.sbom" : "application/vnd.example.signature";
    const annotations = { "org.example.index": String(i) };
    const bytes = json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { mediaType: "application/vnd.oci.empty.v1+json", digest: await digestOf(empty), size: 2 },
      layers: [],
      subject: { mediaType: OCI_MANIFEST, digest: subject, size: image.bytes.length },
      annotations,
    });
    const digest = await digestOf(bytes);
    expect((await putManifest(repo, digest, bytes)).status).toBe(201);
    return { digest, size: bytes.length, artifactType, annotations };
  };
  const referrers: Referrer[] = [];
  for (let i = 0; i < count; i++) referrers.push(await add(i));
  referrers.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  return { repo, subject, referrers, add };
}

const SBOM = "application/vnd.example.sbom+json";
/** Annotations whose JSON needs every kind of escape. */
const AWKWARD_ANNOTATIONS = { "org.example.note": 'a "quote", a \\ backslash, a\nnewline, a tab\t, U+2028 \u2028, é€😀 and \u0001' };

/** An image manifest (of an image it pushes to `repo`) referring to `subject`, an SBOM with AWKWARD_ANNOTATIONS. */
async function sbomReferrer(repo: string, subject: string): Promise<Uint8Array<ArrayBuffer>> {
  const { manifest } = await pushImage(repo);
  return json({ ...manifest, artifactType: SBOM, subject: { mediaType: OCI_MANIFEST, digest: subject, size: 5 }, annotations: AWKWARD_ANNOTATIONS });
}

/** An index referring to `subject`, with neither artifactType nor annotations. */
function indexReferrer(subject: string): Uint8Array<ArrayBuffer> {
  return json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], subject: { mediaType: OCI_MANIFEST, digest: subject, size: 5 } });
}

async function referrersOf(repo: string, subject: string, query = ""): Promise<{ response: Response; index: Index }> {
  const response = await fetchRegistry(`/v2/${repo}/referrers/${subject}${query}`);
  return { response, index: (await response.clone().json()) as Index };
}

describe("end-12a GET /v2/<name>/referrers/<digest>", () => {
  it("lists the referrers as an image index of descriptors with artifactType and annotations", async () => {
    const { repo, subject, referrers } = await subjectWithReferrers(3);
    const { response, index } = await referrersOf(repo, subject);
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe(OCI_INDEX);
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe(OCI_INDEX);
    expect(index.manifests).toEqual(referrers.map((r) => ({ mediaType: OCI_MANIFEST, ...r })));
  });

  it("reports an image manifest's config media type when it has no artifactType", async () => {
    const repo = uniqueRepo();
    const subject = `sha256:${"1".repeat(64)}`;
    const { manifest } = await pushImage(repo);
    const bytes = json({ ...manifest, subject: { mediaType: OCI_MANIFEST, digest: subject, size: 5 } });
    const digest = await digestOf(bytes);
    await putManifest(repo, digest, bytes);
    const { index } = await referrersOf(repo, subject);
    // The whole descriptor: a manifest without annotations lists none, not an empty or null field.
    expect(index.manifests).toStrictEqual([{ mediaType: OCI_MANIFEST, digest, size: bytes.length, artifactType: "application/vnd.oci.image.config.v1+json" }]);
  });

  it("lists an index without artifactType with no artifactType field, not a null one", async () => {
    const repo = uniqueRepo();
    const subject = `sha256:${"4".repeat(64)}`;
    const bytes = indexReferrer(subject);
    const digest = await digestOf(bytes);
    expect((await putManifest(repo, digest, bytes, OCI_INDEX)).status).toBe(201);
    const { index } = await referrersOf(repo, subject);
    expect(index.manifests).toStrictEqual([{ mediaType: OCI_INDEX, digest, size: bytes.length }]);
  });

  it("writes the index byte for byte as JSON.stringify would, annotations' escapes and all", async () => {
    const repo = uniqueRepo();
    const subject = `sha256:${"3".repeat(64)}`;
    const bytes = await sbomReferrer(repo, subject);
    const digest = await digestOf(bytes);
    expect((await putManifest(repo, digest, bytes)).status).toBe(201);
    const response = await fetchRegistry(`/v2/${repo}/referrers/${subject}`);
    const descriptor = { mediaType: OCI_MANIFEST, digest, size: bytes.length, artifactType: SBOM, annotations: AWKWARD_ANNOTATIONS };
    expect(await response.text()).toBe(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptor] }));
  });

  it("answers an empty index for a digest nothing refers to", async () => {
    const { response, index } = await referrersOf(uniqueRepo(), `sha256:${"2".repeat(64)}`);
    expect(response.status).toBe(200);
    expect(index).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  });

  it("pages with n and a Link that walks every referrer once", async () => {
    const { repo, subject, referrers } = await subjectWithReferrers(5);
    const seen: string[] = [];
    let next: string | null = `/v2/${repo}/referrers/${subject}?n=2`;
    let pages = 0;
    while (next) {
      const response = await fetchRegistry(next);
      seen.push(...((await response.json()) as Index).manifests.map((m) => m.digest));
      next = response.headers.get("Link")?.match(/^<([^>]+)>; rel="next"$/)?.[1] ?? null;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(referrers.map((r) => r.digest));
  });
});

describe("end-12b GET /v2/<name>/referrers/<digest>?artifactType=", () => {
  it("filters by artifact type and says so in OCI-Filters-Applied", async () => {
    const { repo, subject, referrers } = await subjectWithReferrers(4);
    const { response, index } = await referrersOf(repo, subject, "?artifactType=application/vnd.example.signature");
    expect(response.headers.get("OCI-Filters-Applied")).toBe("artifactType");
    expect(index.manifests.map((m) => m.digest)).toEqual(referrers.filter((r) => r.artifactType === "application/vnd.example.signature").map((r) => r.digest));
  });

  it("keeps the filter in the Link to the next page", async () => {
    const { repo, subject } = await subjectWithReferrers(6);
    const { response } = await referrersOf(repo, subject, "?artifactType=application/vnd.example.sbom&n=1");
    expect(response.headers.get("Link")).toMatch(/artifactType=application%2Fvnd\.example\.sbom/);
  });
});

describe("referrers pages stay fresh (an isolate remembers pages by the list's version)", () => {
  const SIGNATURE = "?artifactType=application/vnd.example.signature";
  const digests = async (repo: string, subject: string, query: string) => (await referrersOf(repo, subject, query)).index.manifests.map((m) => m.digest);

  it("lists a referrer pushed since the page was listed, and not one deleted since, at once, filtered or not", async () => {
    const { repo, subject, referrers, add } = await subjectWithReferrers(3);
    for (const query of ["", SIGNATURE, "?n=2"]) await referrersOf(repo, subject, query);
    const added = await add(3);
    const now = [...referrers, added].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    expect(await digests(repo, subject, "")).toEqual(now.map((r) => r.digest));
    expect(await digests(repo, subject, SIGNATURE)).toEqual(now.filter((r) => r.artifactType.endsWith("signature")).map((r) => r.digest));
    expect(await digests(repo, subject, "?n=2")).toEqual(now.slice(0, 2).map((r) => r.digest));

    const [gone, ...left] = now;
    expect((await fetchRegistry(`/v2/${repo}/manifests/${gone!.digest}`, { method: "DELETE" })).status).toBe(202);
    expect(await digests(repo, subject, "")).toEqual(left.map((r) => r.digest));
    expect(await digests(repo, subject, SIGNATURE)).toEqual(left.filter((r) => r.artifactType.endsWith("signature")).map((r) => r.digest));
    expect(await digests(repo, subject, "?n=2")).toEqual(left.slice(0, 2).map((r) => r.digest));
  });
});

describe("end-12 referrers pushed before migration 0008, whose descriptors the migration writes", () => {
  type OldRow = { digest: string; mediaType: string; size: number; subject: string; artifactType: string | null; annotations: string | null };

  /** The descriptors 0008 writes for manifest rows stored as the registry stored them before (annotations in a column of their own). */
  async function migratedDescriptors(rows: OldRow[]): Promise<(string | null)[]> {
    // A database as the registry left it before 0008, brought up to date beside the one the tests push to:
    // once per file, as the database keeps its schema from one test to the next.
    const db = env.UPGRADE_DB;
    await applyD1Migrations(db, env.TEST_MIGRATIONS.filter((migration) => migration.name < "0008"));
    const insert = db.prepare(
      `INSERT INTO manifests (repository, digest, media_type, size, content, object_key, subject, artifact_type, annotations, created_at)
       VALUES ('before/0008', ?1, ?2, ?3, '{}', NULL, ?4, ?5, ?6, 0)`,
    );
    await db.batch(rows.map((row) => insert.bind(row.digest, row.mediaType, row.size, row.subject, row.artifactType, row.annotations)));
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    // 0010 gave the subject's list a version, one for all its referrers.
    const versions = await db.prepare("SELECT version FROM referrer_lists WHERE repository = 'before/0008' AND subject IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(rows.map((row) => row.subject))).all();
    expect(versions.results).toEqual([{ version: expect.any(Number) }]);
    const read = db.prepare("SELECT descriptor FROM manifests WHERE repository = 'before/0008' AND digest = ?1");
    return Promise.all(rows.map((row) => read.bind(row.digest).first<string>("descriptor")));
  }

  /** The descriptors of a referrers list, as its text has them. */
  async function listedDescriptors(repo: string, subject: string): Promise<string> {
    const text = await (await fetchRegistry(`/v2/${repo}/referrers/${subject}`)).text();
    return text.slice(text.indexOf('"manifests":[') + '"manifests":['.length, -"]}".length);
  }

  it("lists them byte for byte as it lists those pushed since: annotations' escapes and all, and no field a manifest lacks", async () => {
    const repo = uniqueRepo();
    const subject = `sha256:${"5".repeat(64)}`;
    const image = await sbomReferrer(repo, subject);
    const index = indexReferrer(subject);
    const [imageDigest, indexDigest] = [await digestOf(image), await digestOf(index)];
    expect((await putManifest(repo, imageDigest, image)).status).toBe(201);
    expect((await putManifest(repo, indexDigest, index, OCI_INDEX)).status).toBe(201);
    const migrated = await migratedDescriptors([
      { digest: imageDigest, mediaType: OCI_MANIFEST, size: image.length, subject, artifactType: SBOM, annotations: JSON.stringify(AWKWARD_ANNOTATIONS) },
      { digest: indexDigest, mediaType: OCI_INDEX, size: index.length, subject, artifactType: null, annotations: null },
    ]);
    // The list is in digest order.
    const inOrder = imageDigest < indexDigest ? migrated : [...migrated].reverse();
    expect(inOrder.join(",")).toBe(await listedDescriptors(repo, subject));
    expect(JSON.parse(migrated[1]!)).toStrictEqual({ mediaType: OCI_INDEX, digest: indexDigest, size: index.length });
  });
});
