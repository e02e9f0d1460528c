import { applyD1Migrations, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { errorCode, fetchRegistry, pushImage, putManifest, uniqueRepo } from "./client";

async function repoWithTags(tags: string[]): Promise<string> {
  const repo = uniqueRepo();
  const { bytes } = await pushImage(repo);
  const [first, ...rest] = tags;
  const query = rest.map((t) => `tag=${t}`).join("&");
  const response = await putManifest(repo, first!, bytes);
  expect(response.status).toBe(201);
  if (rest.length > 0) {
    const digest = response.headers.get("Docker-Content-Digest")!;
    expect((await fetchRegistry(`/v2/${repo}/manifests/${digest}?${query}`, { method: "PUT", headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" }, body: bytes })).status).toBe(201);
  }
  return repo;
}

async function list(repo: string, query = ""): Promise<{ response: Response; tags: string[] }> {
  const response = await fetchRegistry(`/v2/${repo}/tags/list${query}`);
  const body = (await response.clone().json()) as { name: string; tags: string[] };
  return { response, tags: body.tags };
}

describe("end-8a GET /v2/<name>/tags/list", () => {
  it("lists every tag in lexical order", async () => {
    const repo = await repoWithTags(["v2", "latest", "V1", "1.0", "_x", "a-b", "a.b"]);
    const { response } = await list(repo);
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe("application/json");
    // Byte for byte what JSON.stringify writes.
    expect(await response.text()).toBe(JSON.stringify({ name: repo, tags: ["1.0", "V1", "_x", "a-b", "a.b", "latest", "v2"] }));
    expect(response.headers.get("Link")).toBeNull();
  });

  it("is 404 NAME_UNKNOWN for a repository that does not exist", async () => {
    const response = await fetchRegistry(`/v2/${uniqueRepo()}/tags/list`);
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("NAME_UNKNOWN");
  });

  it("is an empty list for a repository whose tags were all deleted", async () => {
    const repo = await repoWithTags(["only"]);
    expect((await fetchRegistry(`/v2/${repo}/manifests/only`, { method: "DELETE" })).status).toBe(202);
    expect((await list(repo)).tags).toEqual([]);
  });
});

describe("end-8b GET /v2/<name>/tags/list?n=<n>&last=<last>", () => {
  const tags = ["a", "b", "c", "d", "e"];

  it("returns at most n tags after `last` (exclusive), with a Link to the next page", async () => {
    const repo = await repoWithTags(tags);
    const first = await list(repo, "?n=2");
    expect(first.tags).toEqual(["a", "b"]);
    expect(first.response.headers.get("Link")).toBe(`</v2/${repo}/tags/list?n=2&last=b>; rel="next"`);
    const second = await list(repo, "?n=2&last=b");
    expect(second.tags).toEqual(["c", "d"]);
    const third = await list(repo, "?n=2&last=d");
    expect(third.tags).toEqual(["e"]);
    expect(third.response.headers.get("Link")).toBeNull();
  });

  it("walks every tag exactly once by following Link", async () => {
    const repo = await repoWithTags(tags);
    const seen: string[] = [];
    let next: string | null = `/v2/${repo}/tags/list?n=2`;
    while (next) {
      const response = await fetchRegistry(next);
      seen.push(...((await response.json()) as { tags: string[] }).tags);
      next = response.headers.get("Link")?.match(/^<([^>]+)>; rel="next"$/)?.[1] ?? null;
    }
    expect(seen).toEqual(tags);
  });

  it("answers n=0 with an empty list", async () => {
    const repo = await repoWithTags(tags);
    const { response, tags: page } = await list(repo, "?n=0");
    expect(response.status).toBe(200);
    expect(page).toEqual([]);
  });

  it("treats `last` as a position even when it is not a tag", async () => {
    const repo = await repoWithTags(tags);
    expect((await list(repo, "?last=bb")).tags).toEqual(["c", "d", "e"]);
    expect((await list(repo, "?last=z")).tags).toEqual([]);
  });
});

describe("tags pages stay fresh (an isolate remembers pages by the tag list's version)", () => {
  it("lists a tag pushed since the page was listed, and not one deleted since, at once", async () => {
    const repo = await repoWithTags(["a", "b", "c"]);
    const { bytes } = await pushImage(repo);
    for (const query of ["", "?n=2", "?last=a"]) await list(repo, query);
    expect((await putManifest(repo, "bb", bytes)).status).toBe(201);
    expect((await list(repo)).tags).toEqual(["a", "b", "bb", "c"]);
    expect((await list(repo, "?n=2")).tags).toEqual(["a", "b"]);
    expect((await list(repo, "?last=a")).tags).toEqual(["b", "bb", "c"]);
    expect((await fetchRegistry(`/v2/${repo}/manifests/b`, { method: "DELETE" })).status).toBe(202);
    expect((await list(repo)).tags).toEqual(["a", "bb", "c"]);
    expect((await list(repo, "?n=2")).tags).toEqual(["a", "bb"]);
    expect((await list(repo, "?last=a")).tags).toEqual(["bb", "c"]);
  });

  it("lists no tag of a manifest deleted since: its tags go with it", async () => {
    const repo = await repoWithTags(["a", "b"]);
    const { bytes } = await pushImage(repo, 2);
    const pushed = await putManifest(repo, "c", bytes);
    expect((await list(repo)).tags).toEqual(["a", "b", "c"]);
    expect((await fetchRegistry(`/v2/${repo}/manifests/${pushed.headers.get("Docker-Content-Digest")}`, { method: "DELETE" })).status).toBe(202);
    expect((await list(repo)).tags).toEqual(["a", "b"]);
  });
});

describe("tags pushed before migration 0009, which gives each repository's tag list a version", () => {
  it("gives one version to a repository's tags", async () => {
    // A database as the registry left it before 0009, brought up to date beside the one the tests push to.
    const db = env.UPGRADE_DB;
    await applyD1Migrations(db, env.TEST_MIGRATIONS.filter((migration) => migration.name < "0009"));
    const insert = db.prepare("INSERT INTO tags (repository, name, digest, updated_at) VALUES ('before/0009', ?1, ?2, 0)");
    await db.batch(["a", "b"].map((tag) => insert.bind(tag, `sha256:${"7".repeat(64)}`)));
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    const versions = await db.prepare("SELECT version FROM tag_lists WHERE repository = 'before/0009'").all();
    expect(versions.results).toEqual([{ version: expect.any(Number) }]);
  });
});
