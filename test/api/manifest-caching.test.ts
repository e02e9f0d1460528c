import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adminAuthorization, basic, createUser, fetchAuthed, grant, makePublic, PASSWORD, uniqueName } from "./auth";
import { BASE, digestOf, errorCode, fetchWithEnv, json, pushBlob, pushImage, putManifest, uniqueRepo } from "./client";

/**
 * A request run to the end, its work after the response (filling the cache)
 * included, so the next request sees what it left.
 */
const pull = (path: string, init?: RequestInit) => fetchWithEnv({}, path, init);
const manifestPath = (repo: string, reference: string) => `/v2/${repo}/manifests/${reference}`;

/** A repository with one image manifest pushed as `tag`; its digest and bytes. */
async function pushed(tag = "latest", repo = uniqueRepo()) {
  const { bytes } = await pushImage(repo);
  expect((await putManifest(repo, tag, bytes)).status).toBe(201);
  return { repo, tag, bytes, digest: await digestOf(bytes) };
}

/** A repository with an image manifest padded by `padding` bytes of annotation, pushed as `large`. */
async function pushedPadded(padding: number) {
  const repo = uniqueRepo();
  const { manifest } = await pushImage(repo);
  const bytes = json({ ...manifest, annotations: { pad: "x".repeat(padding) } });
  expect((await putManifest(repo, "large", bytes)).status).toBe(201);
  return { repo, bytes, digest: await digestOf(bytes) };
}

/** The location's Cache API key of a manifest (storage/keys.ts). */
const cacheKeyOf = (repo: string, digest: string) => `${BASE}/_cache/manifests/${repo}/${digest}`;

/** Removes a manifest's D1 rows behind the registry's back: only a cache can still answer for it. */
async function removeRow(repo: string, digest: string): Promise<void> {
  await env.DB.batch([
    env.DB.prepare("DELETE FROM tags WHERE repository = ?1 AND digest = ?2").bind(repo, digest),
    env.DB.prepare("DELETE FROM manifest_references WHERE repository = ?1 AND manifest_digest = ?2").bind(repo, digest),
    env.DB.prepare("DELETE FROM manifests WHERE repository = ?1 AND digest = ?2").bind(repo, digest),
  ]);
}

type Query = { start: string; sql: string };

/**
 * The D1 binding with every query recorded by the start of its session
 * ("first-unconstrained", "first-primary" or a bookmark). With `lagging`, a
 * session that does not begin on the primary is a replica that has seen
 * nothing yet: every read finds no row. With `bookmark`, every session
 * reports that bookmark as the one its queries reached.
 */
function recordedDatabase({ lagging = false, bookmark }: { lagging?: boolean; bookmark?: string } = {}): { DB: D1Database; queries: Query[]; starts: string[] } {
  const queries: Query[] = [];
  const starts: string[] = [];
  const DB = {
    withSession(start: string) {
      starts.push(start);
      const session = env.DB.withSession(start);
      const empty = lagging && start !== "first-primary";
      return {
        prepare(sql: string) {
          queries.push({ start, sql });
          return empty ? emptyStatement() : session.prepare(sql);
        },
        batch(statements: D1PreparedStatement[]) {
          queries.push({ start, sql: "batch" });
          return session.batch(statements);
        },
        getBookmark: () => bookmark ?? session.getBookmark(),
      };
    },
  } as unknown as D1Database;
  return { DB, queries, starts };
}

function emptyStatement(): D1PreparedStatement {
  const statement = {
    bind: () => statement,
    first: async () => null,
    all: async () => ({ results: [], success: true, meta: {} }),
    raw: async () => [],
  };
  return statement as unknown as D1PreparedStatement;
}

describe("If-None-Match on manifests", () => {
  it("is 304 with ETag and Docker-Content-Digest and no body, by tag and by digest, for GET and HEAD", async () => {
    const { repo, tag, digest } = await pushed();
    for (const reference of [tag, digest]) {
      for (const method of ["GET", "HEAD"]) {
        const response = await pull(manifestPath(repo, reference), { method, headers: { "If-None-Match": `"${digest}"` } });
        expect(response.status, `${method} ${reference}`).toBe(304);
        expect(response.headers.get("ETag")).toBe(`"${digest}"`);
        expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
        expect(await response.text()).toBe("");
      }
    }
  });

  it("matches `*`, any tag of a list, and weak tags", async () => {
    const { repo, digest } = await pushed();
    for (const header of ["*", `"sha256:${"0".repeat(64)}", "${digest}"`, `W/"${digest}"`, `"other",W/"${digest}"`]) {
      const response = await pull(manifestPath(repo, digest), { headers: { "If-None-Match": header } });
      expect(response.status, header).toBe(304);
    }
  });

  it("is 200 with the manifest when no tag matches", async () => {
    const { repo, tag, bytes, digest } = await pushed();
    for (const header of [`"sha256:${"0".repeat(64)}"`, digest, `"${digest.slice(0, -1)}"`]) {
      const response = await pull(manifestPath(repo, tag), { headers: { "If-None-Match": header } });
      expect(response.status, header).toBe(200);
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
    }
  });

  it("is 404 for a manifest deleted since, whatever the client holds", async () => {
    const { repo, digest } = await pushed();
    await pull(manifestPath(repo, digest));
    expect((await pull(manifestPath(repo, digest), { method: "DELETE" })).status).toBe(202);
    for (const header of [`"${digest}"`, "*"]) {
      const response = await pull(manifestPath(repo, digest), { headers: { "If-None-Match": header } });
      expect(response.status).toBe(404);
      expect(await errorCode(response)).toBe("MANIFEST_UNKNOWN");
    }
  });
});

describe("Cache-Control on manifests", () => {
  it("by tag: revalidate every time; by digest: keep for MANIFEST_CACHE_SECONDS", async () => {
    const { repo, tag, digest } = await pushed();
    for (const method of ["GET", "HEAD"]) {
      expect((await pull(manifestPath(repo, tag), { method })).headers.get("Cache-Control")).toBe("public, no-cache");
      expect((await pull(manifestPath(repo, digest), { method })).headers.get("Cache-Control")).toBe("public, max-age=60");
    }
    const configured = await fetchWithEnv({ MANIFEST_CACHE_SECONDS: "5" }, manifestPath(repo, digest));
    expect(configured.headers.get("Cache-Control")).toBe("public, max-age=5");
  });

  it("is private where pulling takes credentials, public where anyone may pull", async () => {
    const user = uniqueName("cc");
    await createUser(user, [grant("*", "pull")]);
    const authorization = basic(user, PASSWORD);
    const closed = await pushed("v1", uniqueRepo(uniqueName("closed")));
    const open = await pushed("v1", uniqueRepo(uniqueName("open")));
    await makePublic(open.repo.split("/")[0]!);

    for (const reference of [closed.tag, closed.digest]) {
      const response = await fetchAuthed(manifestPath(closed.repo, reference), { headers: { Authorization: authorization } });
      expect(response.status).toBe(200);
      expect(response.headers.get("Cache-Control")).toMatch(/^private, /);
    }
    for (const reference of [open.tag, open.digest]) {
      const response = await fetchAuthed(manifestPath(open.repo, reference));
      expect(response.status).toBe(200);
      expect(response.headers.get("Cache-Control")).toMatch(/^public, /);
    }
  });
});

describe("the manifest cache (GET and HEAD by digest)", () => {
  it("answers a repeated pull by digest with no D1 query, with the exact bytes and headers", async () => {
    const { repo, bytes, digest } = await pushed();
    await pull(manifestPath(repo, digest));
    const { DB, queries } = recordedDatabase();
    for (const method of ["GET", "HEAD"]) {
      const response = await fetchWithEnv({ DB }, manifestPath(repo, digest), { method });
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Type")).toBe("application/vnd.oci.image.manifest.v1+json");
      expect(response.headers.get("Content-Length")).toBe(String(bytes.length));
      expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
      expect(response.headers.get("ETag")).toBe(`"${digest}"`);
      if (method === "GET") expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
    }
    expect(queries).toEqual([]);
  });

  it("answers a hot manifest from the isolate's memory, with no cache read: the exact bytes every time, until DELETE", async () => {
    const { repo, bytes, digest } = await pushed();
    expect((await pull(manifestPath(repo, digest))).status).toBe(200);
    // Only the isolate's memory is left to answer.
    await removeRow(repo, digest);
    expect(await caches.default.delete(cacheKeyOf(repo, digest))).toBe(true);
    for (const method of ["GET", "HEAD", "GET", "GET"]) {
      const response = await pull(manifestPath(repo, digest), { method });
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Length")).toBe(String(bytes.length));
      if (method === "GET") expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
    }
    expect((await pull(manifestPath(repo, digest), { method: "DELETE" })).status).toBe(404);
    for (const method of ["GET", "HEAD"]) expect((await pull(manifestPath(repo, digest), { method })).status).toBe(404);
  });

  it("remembers a manifest too large for the isolate's memory by its head: HEAD needs no cache read, GET reads the cache", async () => {
    const { repo, digest, bytes: large } = await pushedPadded(20_000);
    expect((await pull(manifestPath(repo, digest))).status).toBe(200);
    await removeRow(repo, digest);
    const fromCache = await pull(manifestPath(repo, digest));
    expect(new Uint8Array(await fromCache.arrayBuffer())).toEqual(large);
    await caches.default.delete(cacheKeyOf(repo, digest));
    const head = await pull(manifestPath(repo, digest), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("Content-Length")).toBe(String(large.length));
    expect((await pull(manifestPath(repo, digest))).status).toBe(404);
  });

  it("remembers what it found in the cache no longer than the cache keeps it, so a deleted manifest's bound stays MANIFEST_CACHE_SECONDS", async () => {
    const seconds = (path: string, init?: RequestInit) => fetchWithEnv({ MANIFEST_CACHE_SECONDS: "2" }, path, init);
    const { repo, digest } = await pushedPadded(20_000);
    const filled = Date.now();
    expect((await seconds(manifestPath(repo, digest))).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    // Its body comes from the cache entry, which has under a second left: that is all the isolate may keep it.
    expect((await seconds(manifestPath(repo, digest))).status).toBe(200);
    await removeRow(repo, digest);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, filled + 2300 - Date.now())));
    expect((await seconds(manifestPath(repo, digest), { method: "HEAD" })).status).toBe(404);
  });

  it("leaves the cache alone on a pull by tag: a pull by digest reads D1 until it fills its own entry", async () => {
    const { repo, tag, digest } = await pushed();
    expect((await pull(manifestPath(repo, tag))).status).toBe(200);
    await removeRow(repo, digest);
    expect((await pull(manifestPath(repo, digest))).status).toBe(404);
  });

  it("keeps what a pull by digest read, manifests stored in R2 too", async () => {
    // Past what a D1 row holds, so the bytes come from R2.
    const { repo, digest, bytes: large } = await pushedPadded(1_000_000);
    expect((await pull(manifestPath(repo, digest))).status).toBe(200);
    await removeRow(repo, digest);
    const cached = await pull(manifestPath(repo, digest));
    expect(cached.status).toBe(200);
    expect(cached.headers.get("Content-Length")).toBe(String(large.length));
    expect(new Uint8Array(await cached.arrayBuffer())).toEqual(large);
  });

  it("serves a manifest whose row is gone until DELETE, which forgets it at once", async () => {
    const { repo, bytes, digest } = await pushed();
    await pull(manifestPath(repo, digest));
    await removeRow(repo, digest);
    const cached = await pull(manifestPath(repo, digest));
    expect(cached.status).toBe(200);
    expect(new Uint8Array(await cached.arrayBuffer())).toEqual(bytes);
    // D1 has nothing left to delete (404), but the cache forgets it all the same.
    expect((await pull(manifestPath(repo, digest), { method: "DELETE" })).status).toBe(404);
    for (const method of ["GET", "HEAD"]) expect((await pull(manifestPath(repo, digest), { method })).status).toBe(404);
  });

  it("does not serve a manifest deleted through the API, from the next request on", async () => {
    const { repo, digest } = await pushed();
    expect((await pull(manifestPath(repo, digest))).status).toBe(200);
    expect((await pull(manifestPath(repo, digest), { method: "DELETE" })).status).toBe(202);
    const response = await pull(manifestPath(repo, digest));
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("MANIFEST_UNKNOWN");
  });

  it("keeps each repository's copies apart: one cached for a repository is not served for another", async () => {
    const { repo, digest } = await pushed();
    expect((await pull(manifestPath(repo, digest))).status).toBe(200);
    const response = await pull(manifestPath(uniqueRepo(), digest));
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("MANIFEST_UNKNOWN");
  });

  it("is off with MANIFEST_CACHE_SECONDS=0", async () => {
    const { repo, digest } = await pushed();
    const off = (path: string) => fetchWithEnv({ MANIFEST_CACHE_SECONDS: "0" }, path);
    // Cached while the cache was on, then turned off: what is cached is not used.
    expect((await pull(manifestPath(repo, digest))).status).toBe(200);
    await removeRow(repo, digest);
    const response = await off(manifestPath(repo, digest));
    expect(response.status).toBe(404);
  });

  it("is never consulted before the caller's access is checked", async () => {
    const reader = uniqueName("reader");
    const outsider = uniqueName("outsider");
    const namespace = uniqueName("private");
    await createUser(reader, [grant(namespace, "pull")]);
    await createUser(outsider);
    const { repo, digest } = await pushed("v1", uniqueRepo(namespace));
    const cached = await fetchAuthed(manifestPath(repo, digest), { headers: { Authorization: basic(reader, PASSWORD) } });
    expect(cached.status).toBe(200);
    for (const method of ["GET", "HEAD"]) {
      const anonymous = await fetchAuthed(manifestPath(repo, digest), { method });
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get("Docker-Content-Digest")).toBeNull();
      const denied = await fetchAuthed(manifestPath(repo, digest), { method, headers: { Authorization: basic(outsider, PASSWORD) } });
      expect(denied.status).toBe(403);
      expect(denied.headers.get("Docker-Content-Digest")).toBeNull();
    }
  });
});

describe("tags are resolved fresh", () => {
  it("a moved tag serves its new manifest at once, and a deleted one is 404", async () => {
    const { repo, tag, bytes: first, digest } = await pushed("t");
    expect(new Uint8Array(await (await pull(manifestPath(repo, tag))).arrayBuffer())).toEqual(first);
    await pull(manifestPath(repo, digest));
    const { bytes: second } = await pushImage(repo, 2);
    expect((await putManifest(repo, tag, second)).status).toBe(201);
    const moved = await pull(manifestPath(repo, tag));
    expect(moved.headers.get("Docker-Content-Digest")).toBe(await digestOf(second));
    expect(new Uint8Array(await moved.arrayBuffer())).toEqual(second);
    // A client holding the old ETag is told the tag moved.
    expect((await pull(manifestPath(repo, tag), { headers: { "If-None-Match": `"${digest}"` } })).status).toBe(200);

    expect((await pull(manifestPath(repo, tag), { method: "DELETE" })).status).toBe(202);
    for (const method of ["GET", "HEAD"]) expect((await pull(manifestPath(repo, tag), { method })).status).toBe(404);
    // The first manifest is still there by digest.
    expect((await pull(manifestPath(repo, digest))).status).toBe(200);
  });
});

describe("D1 sessions", () => {
  it("a response that read D1 carries the session's bookmark, as a header and a cookie", async () => {
    const { repo, tag } = await pushed();
    const response = await pull(manifestPath(repo, tag));
    const bookmark = response.headers.get("Registry-Bookmark");
    expect(bookmark).toMatch(/^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32,64}$/);
    const cookie = response.headers.get("Set-Cookie")!;
    expect(cookie).toContain(`Registry-Bookmark=${bookmark}`);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).toMatch(/SameSite=Lax/);
  });

  it("the cookie carries the bookmark the response does, and is Secure over https only", async () => {
    const { repo, tag } = await pushed();
    // Bookmarks as D1 would report them, pinned so that two requests reach the same one.
    const cookieOf = async (bookmark: string, origin: string) => {
      const response = await fetchWithEnv(recordedDatabase({ bookmark }), `${origin}${manifestPath(repo, tag)}`);
      expect(response.headers.get("Registry-Bookmark")).toBe(bookmark);
      return response.headers.get("Set-Cookie")!;
    };
    const first = `00000000-00000001-00000000-${"0".repeat(32)}`;
    const later = `00000000-00000002-00000000-${"0".repeat(32)}`;
    for (const [bookmark, origin, secure] of [
      [first, "http://registry.test", false],
      [first, "https://registry.test", true],
      [first, "http://registry.test", false],
      [later, "http://registry.test", false],
      [later, "https://registry.test", true],
    ] as const) {
      const cookie = await cookieOf(bookmark, origin);
      expect(cookie).toContain(`Registry-Bookmark=${bookmark};`);
      expect(/; Secure/.test(cookie), `${origin} ${cookie}`).toBe(secure);
    }
  });

  it("reads begin on any replica, or from the bookmark the client brings in a header or a cookie; writes on the primary", async () => {
    const { repo, tag, bytes } = await pushed();
    const bookmark = (await pull(manifestPath(repo, tag))).headers.get("Registry-Bookmark")!;
    const cases: [RequestInit, string][] = [
      [{}, "first-unconstrained"],
      [{ headers: { "Registry-Bookmark": bookmark } }, bookmark],
      [{ headers: { Cookie: `other=1; Registry-Bookmark=${bookmark}` } }, bookmark],
      [{ method: "PUT", headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json", "Registry-Bookmark": bookmark }, body: bytes }, "first-primary"],
      [{ method: "DELETE" }, "first-primary"],
    ];
    for (const [init, start] of cases) {
      const { DB, starts } = recordedDatabase();
      const response = await fetchWithEnv({ DB }, manifestPath(repo, tag), init);
      expect(response.status, `${init.method ?? "GET"} ${JSON.stringify(init.headers)}`).toBeLessThan(300);
      expect(starts[0]).toBe(start);
    }
  });

  it("administration reads on the primary what it just changed, and so do logins", async () => {
    const { DB, starts } = recordedDatabase({ lagging: true });
    const administered = await fetchWithEnv({ DB, AUTH_MODE: "token" }, "/admin/users", { headers: { Authorization: adminAuthorization() } });
    expect(administered.status).toBe(200);
    expect(starts[0]).toBe("first-primary");

    // A user made a moment ago logs in, and pulls, though the replica has not seen them yet.
    const user = uniqueName("fresh");
    await createUser(user, [grant("*", "pull")]);
    const { repo, tag } = await pushed();
    const response = await fetchWithEnv({ DB, AUTH_MODE: "token" }, manifestPath(repo, tag), { headers: { Authorization: basic(user, PASSWORD) } });
    expect(response.status).toBe(200);
  });

  it("ignores a bookmark that is not one, and answers as usual", async () => {
    const { repo, tag } = await pushed();
    for (const bookmark of ["garbage", "", "zzzzzzzz-00000000-00000000-00000000000000000000000000000000", "x".repeat(5000)]) {
      const { DB, starts } = recordedDatabase();
      const response = await fetchWithEnv({ DB }, manifestPath(repo, tag), { headers: { "Registry-Bookmark": bookmark } });
      expect(response.status).toBe(200);
      expect(starts[0]).toBe("first-unconstrained");
    }
  });

  it("what a lagging replica lacks is looked for on the primary: new content is visible at once", async () => {
    const { repo, tag, digest } = await pushed();
    const blob = await pushBlob(repo, json({ fresh: true }));
    const { DB, queries } = recordedDatabase({ lagging: true });
    const lagging = (path: string, init?: RequestInit) => fetchWithEnv({ DB, MANIFEST_CACHE_SECONDS: "0" }, path, init);

    expect((await lagging(manifestPath(repo, tag))).status).toBe(200);
    expect((await lagging(manifestPath(repo, digest), { method: "HEAD" })).status).toBe(200);
    expect((await lagging(`/v2/${repo}/blobs/${blob}`, { method: "HEAD" })).status).toBe(200);
    const tags = await lagging(`/v2/${repo}/tags/list`);
    expect(tags.status).toBe(200);
    expect(await tags.json()).toEqual({ name: repo, tags: [tag] });
    expect(queries.some((q) => q.start === "first-primary")).toBe(true);

    // What exists nowhere is still 404, after the primary said so.
    queries.length = 0;
    const missing = await lagging(manifestPath(repo, `sha256:${"0".repeat(64)}`));
    expect(missing.status).toBe(404);
    expect(queries.map((q) => q.start)).toEqual(["first-unconstrained", "first-primary"]);
    expect((await lagging(`/v2/${uniqueRepo()}/tags/list`)).status).toBe(404);
  });

  it("a read that finds what it looks for asks nothing of the primary", async () => {
    const { repo, tag } = await pushed();
    const { DB, queries } = recordedDatabase();
    expect((await fetchWithEnv({ DB }, manifestPath(repo, tag))).status).toBe(200);
    expect((await fetchWithEnv({ DB }, `/v2/${repo}/tags/list`)).status).toBe(200);
    expect(queries.length).toBeGreaterThan(0);
    expect(queries.filter((q) => q.start === "first-primary")).toEqual([]);
  });

  it("a request that queries nothing opens no session and carries no bookmark", async () => {
    const { repo, digest } = await pushed();
    await pull(manifestPath(repo, digest));
    const { DB, starts } = recordedDatabase();
    for (const path of ["/v2/", manifestPath(repo, digest)]) {
      const response = await fetchWithEnv({ DB }, path);
      expect(response.status).toBe(200);
      expect(response.headers.get("Registry-Bookmark")).toBeNull();
      expect(response.headers.get("Set-Cookie")).toBeNull();
    }
    expect(starts).toEqual([]);
  });
});
