import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { signDownload } from "../../src/auth/download-links";
import type { Digest } from "../../src/oci/digest";
import { presignUrl } from "../../src/storage/r2-presign";
import { adminAuthorization, basic, createUser, fetchAuthed, grant, makePublic, PASSWORD, uniqueName } from "./auth";
import { BASE, errorCode, fetchRegistry, fetchWithEnv, firstError, pushBlob, randomBytes, uniqueRepo } from "./client";

const MiB = 1024 * 1024;
/** Most tests redirect every blob, so that small ones do (the default threshold is tested on its own). */
const SIZE = 5000;
const REDIRECT_ALL = { REDIRECT_MIN_BYTES: "1" };
/** The R2 account and keys a deployment with BLOB_REDIRECT=presigned sets; made up, since no S3 endpoint runs here. */
const R2 = { R2_ACCOUNT_ID: "acct0123", R2_ACCESS_KEY_ID: "AKIDEXAMPLE", R2_SECRET_ACCESS_KEY: "r2-secret", R2_BUCKET_NAME: "registry-bucket" };
const MODES = ["signed", "presigned", "none"] as const;

afterEach(() => {
  vi.restoreAllMocks();
});

/** A blob of `size` random bytes pushed to a new repository (of namespace `namespace` if given). */
async function pushed(size: number, namespace?: string): Promise<{ repo: string; digest: string; bytes: Uint8Array<ArrayBuffer> }> {
  const repo = namespace ? `${namespace}/app` : uniqueRepo();
  const bytes = randomBytes(size);
  return { repo, digest: await pushBlob(repo, bytes), bytes };
}

/** The download link a blob GET redirects to. */
async function downloadLink(repo: string, digest: string): Promise<URL> {
  const response = await fetchWithEnv(REDIRECT_ALL, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
  expect(response.status).toBe(307);
  return new URL(response.headers.get("Location")!);
}

async function bytesOf(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

describe("end-2 GET /v2/<name>/blobs/<digest> with BLOB_REDIRECT", () => {
  it("signed (the default): a blob of REDIRECT_MIN_BYTES or more answers 307 to the registry's download route, with no body", async () => {
    const { repo, digest, bytes } = await pushed(MiB);
    const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
    expect(response.status).toBe(307);
    expect(response.headers.get("Location")).toMatch(new RegExp(`^${BASE}/downloads/${digest}/${repo.split("/")[1]}-${digest.slice(7, 19)}\\?`));
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    expect(await response.text()).toBe("");
    const followed = await fetchRegistry(response.headers.get("Location")!);
    expect(followed.status).toBe(200);
    expect(await bytesOf(followed)).toEqual(bytes);
  });

  it("none: every blob is streamed by the Worker", async () => {
    const { repo, digest, bytes } = await pushed(SIZE);
    const response = await fetchWithEnv({ BLOB_REDIRECT: "none", ...REDIRECT_ALL }, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
    expect(response.status).toBe(200);
    expect(response.headers.get("Location")).toBeNull();
    expect(await bytesOf(response)).toEqual(bytes);
  });

  it.each(MODES)("%s: a blob smaller than REDIRECT_MIN_BYTES is answered directly", async (mode) => {
    const { repo, digest, bytes } = await pushed(SIZE);
    const response = await fetchWithEnv({ BLOB_REDIRECT: mode, REDIRECT_MIN_BYTES: String(SIZE + 1), ...R2 }, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
    expect(response.status).toBe(200);
    expect(await bytesOf(response)).toEqual(bytes);
  });

  it("REDIRECT_MIN_BYTES sets where redirects begin", async () => {
    const { repo, digest } = await pushed(100);
    const at = (min: string) => fetchWithEnv({ REDIRECT_MIN_BYTES: min }, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
    expect((await at("100")).status).toBe(307);
    expect((await at("101")).status).toBe(200);
  });

  it.each(MODES)("%s: HEAD is answered directly, with Content-Length, ETag, Last-Modified and Accept-Ranges, and reads no R2 object", async (mode) => {
    const { repo, digest } = await pushed(SIZE);
    const get = vi.spyOn(env.BLOBS, "get");
    const response = await fetchWithEnv({ BLOB_REDIRECT: mode, ...REDIRECT_ALL, ...R2 }, `/v2/${repo}/blobs/${digest}`, { method: "HEAD", redirect: "manual" });
    expect(response.status).toBe(200);
    expect(response.headers.get("Location")).toBeNull();
    expect(response.headers.get("Content-Length")).toBe(String(SIZE));
    expect(response.headers.get("ETag")).toBe(`"${digest}"`);
    expect(Date.parse(response.headers.get("Last-Modified")!)).toBeGreaterThan(Date.now() - 600_000);
    expect(response.headers.get("Accept-Ranges")).toBe("bytes");
    expect(get).not.toHaveBeenCalled();
  });

  it("presigned: a private blob answers 307 to R2's S3 endpoint, signed with SigV4 for GET only", async () => {
    const { repo, digest, bytes } = await pushed(SIZE, uniqueName("presigned"));
    const response = await fetchWithEnv({ AUTH_MODE: "token", BLOB_REDIRECT: "presigned", ...REDIRECT_ALL, ...R2 }, `/v2/${repo}/blobs/${digest}`, {
      headers: { Authorization: adminAuthorization() },
      redirect: "manual",
    });
    expect(response.status).toBe(307);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const location = new URL(response.headers.get("Location")!);
    expect(location.origin).toBe("https://acct0123.r2.cloudflarestorage.com");
    expect(location.pathname).toMatch(/^\/registry-bucket\/blobs\//);
    const key = location.pathname.slice("/registry-bucket/".length);
    // The key is the object that holds the blob's bytes.
    expect(new Uint8Array(await (await env.BLOBS.get(key))!.arrayBuffer())).toEqual(bytes);
    const query = location.searchParams;
    const signedAt = query.get("X-Amz-Date")!;
    expect(query.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(query.get("X-Amz-Credential")).toBe(`AKIDEXAMPLE/${signedAt.slice(0, 8)}/auto/s3/aws4_request`);
    expect(query.get("X-Amz-Expires")).toBe("300");
    expect(query.get("X-Amz-SignedHeaders")).toBe("host");
    // The signature is GET's: signing the same URL for HEAD gives another.
    const when = new Date(`${signedAt.slice(0, 4)}-${signedAt.slice(4, 6)}-${signedAt.slice(6, 11)}:${signedAt.slice(11, 13)}:${signedAt.slice(13, 15)}Z`);
    const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "r2-secret", region: "auto" };
    expect(await presignUrl("GET", location.origin, `/registry-bucket/${key}`, credentials, when, 300)).toBe(location.href);
    expect(await presignUrl("HEAD", location.origin, `/registry-bucket/${key}`, credentials, when, 300)).not.toBe(location.href);
  });

  it("presigned: a blob of a public namespace goes to the registry's download route, whose edge cache serves it", async () => {
    const namespace = uniqueName("presignedpub");
    await makePublic(namespace);
    const { repo, digest, bytes } = await pushed(SIZE, namespace);
    const response = await fetchWithEnv({ AUTH_MODE: "token", BLOB_REDIRECT: "presigned", ...REDIRECT_ALL, ...R2 }, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
    expect(response.status).toBe(307);
    const location = response.headers.get("Location")!;
    expect(location).toMatch(new RegExp(`^${BASE}/downloads/${digest}/`));
    expect(new URL(location).searchParams.get("public")).toBe("1");
    expect(await bytesOf(await fetchRegistry(location))).toEqual(bytes);
  });

  it("REDIRECT_TTL_SECONDS sets when the link expires: within it, at least nine tenths of it, on a tenth of it", async () => {
    const { repo, digest } = await pushed(SIZE);
    const before = Math.floor(Date.now() / 1000);
    const response = await fetchWithEnv({ REDIRECT_TTL_SECONDS: "60", ...REDIRECT_ALL }, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
    const after = Math.floor(Date.now() / 1000);
    const expires = Number(new URL(response.headers.get("Location")!).searchParams.get("expires"));
    expect(expires % 6).toBe(0);
    expect(expires).toBeLessThanOrEqual(after + 60);
    expect(expires).toBeGreaterThanOrEqual(before + 54);
  });

  it("a blob pulled again within a tenth of REDIRECT_TTL_SECONDS gets the same link, and a new one after it", async () => {
    const { repo, digest } = await pushed(SIZE);
    const locationAt = async (seconds: number) => {
      vi.setSystemTime(seconds * 1000);
      const response = await fetchWithEnv({ REDIRECT_TTL_SECONDS: "60", ...REDIRECT_ALL }, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
      return response.headers.get("Location")!;
    };
    // A tenth of 60 s is 6 s: the first two pulls fall within one tenth, the third in the next.
    const start = Math.ceil(Date.now() / 6000) * 6 + 1;
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const first = await locationAt(start);
      expect(await locationAt(start + 3)).toBe(first);
      const later = await locationAt(start + 6);
      expect(later).not.toBe(first);
      expect(Number(new URL(later).searchParams.get("expires"))).toBe(Number(new URL(first).searchParams.get("expires")) + 6);
    } finally {
      vi.useRealTimers();
    }
  });

  it.each([
    ["signed", { DOWNLOAD_SECRET: undefined }, "DOWNLOAD_SECRET"],
    ["presigned", { AUTH_MODE: "token", ...R2, R2_SECRET_ACCESS_KEY: undefined }, "R2_SECRET_ACCESS_KEY"],
    ["presigned", { AUTH_MODE: "token", ...R2, R2_BUCKET_NAME: undefined }, "R2_BUCKET_NAME"],
  ] as const)("%s without %o fails with 500, the log naming what is missing", async (mode, overrides, missing) => {
    const { repo, digest } = await pushed(SIZE, uniqueName("unset"));
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await fetchWithEnv({ BLOB_REDIRECT: mode, ...REDIRECT_ALL, ...overrides }, `/v2/${repo}/blobs/${digest}`, {
      headers: { Authorization: adminAuthorization() },
      redirect: "manual",
    });
    expect(response.status).toBe(500);
    expect(response.headers.get("Location")).toBeNull();
    expect(String(log.mock.calls[0]?.[0])).toContain(missing);
  });
});

describe("end-2 GET of a blob: the caller is checked before any redirect", () => {
  it.each(["signed", "presigned"] as const)("%s: without credentials 401, without the right 403, neither with a Location; with it 307", async (mode) => {
    const namespace = uniqueName("guarded");
    const { repo, digest } = await pushed(SIZE, namespace);
    const [stranger, puller] = [uniqueName("stranger"), uniqueName("puller")];
    await createUser(stranger);
    await createUser(puller, [grant(namespace, "pull")]);
    const get = (authorization?: string) =>
      fetchWithEnv({ AUTH_MODE: "token", BLOB_REDIRECT: mode, ...REDIRECT_ALL, ...R2 }, `/v2/${repo}/blobs/${digest}`, {
        headers: authorization ? { Authorization: authorization } : {},
        redirect: "manual",
      });
    const anonymous = await get();
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("Location")).toBeNull();
    const refused = await get(basic(stranger, PASSWORD));
    expect(refused.status).toBe(403);
    expect(refused.headers.get("Location")).toBeNull();
    expect((await get(basic(puller, PASSWORD))).status).toBe(307);
  });
});

describe("end-2 conditional GET and HEAD", () => {
  it.each([(d: string) => `"${d}"`, (d: string) => `W/"${d}"`, (d: string) => `"sha256:${"0".repeat(64)}", "${d}"`, () => "*"])(
    "If-None-Match naming the blob answers 304 with no body, before any redirect (%#)",
    async (ifNoneMatch) => {
      const { repo, digest } = await pushed(SIZE);
      for (const method of ["GET", "HEAD"]) {
        const response = await fetchWithEnv(REDIRECT_ALL, `/v2/${repo}/blobs/${digest}`, { method, headers: { "If-None-Match": ifNoneMatch(digest) }, redirect: "manual" });
        expect(response.status).toBe(304);
        expect(response.headers.get("ETag")).toBe(`"${digest}"`);
        expect(await response.text()).toBe("");
      }
    },
  );

  it("If-None-Match naming other content serves the blob", async () => {
    const { repo, digest, bytes } = await pushed(1000);
    const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { headers: { "If-None-Match": `"sha256:${"0".repeat(64)}"` } });
    expect(response.status).toBe(200);
    expect(await bytesOf(response)).toEqual(bytes);
  });
});

describe("GET/HEAD /downloads/<digest>/<file name>: the final hop of a redirect", () => {
  it("serves the blob without credentials, with the headers a downloader caches and resumes by", async () => {
    const namespace = uniqueName("finalhop");
    const { repo, digest, bytes } = await pushed(SIZE, namespace);
    const head = await fetchAuthed(`/v2/${repo}/blobs/${digest}`, { method: "HEAD", headers: { Authorization: adminAuthorization() } });
    const redirect = await fetchWithEnv({ AUTH_MODE: "token", ...REDIRECT_ALL }, `/v2/${repo}/blobs/${digest}`, { headers: { Authorization: adminAuthorization() }, redirect: "manual" });
    expect(redirect.status).toBe(307);
    for (const method of ["GET", "HEAD"]) {
      const response = await fetchAuthed(redirect.headers.get("Location")!, { method });
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Type")).toBe("application/octet-stream");
      expect(response.headers.get("Content-Length")).toBe(String(SIZE));
      expect(response.headers.get("Accept-Ranges")).toBe("bytes");
      expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
      expect(response.headers.get("ETag")).toBe(`"${digest}"`);
      expect(response.headers.get("Last-Modified")).toBe(head.headers.get("Last-Modified"));
      expect(response.headers.get("Content-Disposition")).toBe(`attachment; filename="app-${digest.slice(7, 19)}"`);
      expect(response.headers.get("Cache-Control")).toBe("private, max-age=31536000, immutable");
      if (method === "GET") expect(await bytesOf(response)).toEqual(bytes);
      else expect(await response.text()).toBe("");
    }
  });

  it("is public for shared caches when anyone may pull the blob", async () => {
    const { repo, digest } = await pushed(SIZE);
    const response = await fetchRegistry((await downloadLink(repo, digest)).href);
    expect(response.headers.get("Cache-Control")).toBe("public, max-age=31536000, immutable");
  });

  it.each([
    ["bytes=0-9", 0, 10],
    ["bytes=1000-", 1000, SIZE - 1000],
    ["bytes=-50", SIZE - 50, 50],
  ])("Range %s answers 206 with the slice", async (range, offset, length) => {
    const { repo, digest, bytes } = await pushed(SIZE);
    const response = await fetchRegistry((await downloadLink(repo, digest)).href, { headers: { Range: range } });
    expect(response.status).toBe(206);
    expect(response.headers.get("Content-Length")).toBe(String(length));
    expect(response.headers.get("Content-Range")).toBe(`bytes ${offset}-${offset + length - 1}/${SIZE}`);
    expect(await bytesOf(response)).toEqual(bytes.subarray(offset, offset + length));
  });

  it("an unsatisfiable Range is 416 RANGE_INVALID with the size", async () => {
    const { repo, digest } = await pushed(SIZE);
    const response = await fetchRegistry((await downloadLink(repo, digest)).href, { headers: { Range: `bytes=${SIZE}-` } });
    expect(response.status).toBe(416);
    expect(response.headers.get("Content-Range")).toBe(`bytes */${SIZE}`);
    expect(await errorCode(response)).toBe("RANGE_INVALID");
  });

  it("If-Range with the ETag honours the Range; with anything else serves the whole blob", async () => {
    const { repo, digest, bytes } = await pushed(SIZE);
    const link = (await downloadLink(repo, digest)).href;
    const matching = await fetchRegistry(link, { headers: { Range: "bytes=0-9", "If-Range": `"${digest}"` } });
    expect(matching.status).toBe(206);
    expect(await bytesOf(matching)).toEqual(bytes.subarray(0, 10));
    const stale = await fetchRegistry(link, { headers: { Range: "bytes=0-9", "If-Range": `"sha256:${"0".repeat(64)}"` } });
    expect(stale.status).toBe(200);
    expect(await bytesOf(stale)).toEqual(bytes);
  });

  it("If-None-Match with the ETag answers 304", async () => {
    const { repo, digest } = await pushed(SIZE);
    const response = await fetchRegistry((await downloadLink(repo, digest)).href, { headers: { "If-None-Match": `"${digest}"` } });
    expect(response.status).toBe(304);
    expect(await response.text()).toBe("");
  });

  describe("refuses a link that is not exactly as signed: 403 DENIED, the message naming no secret", () => {
    const other = `sha256:${"ab".repeat(32)}`;
    const tamperings: [string, (link: URL) => void][] = [
      ["another digest", (link) => (link.pathname = link.pathname.replace(/sha256:[0-9a-f]{64}/, other))],
      ["another file name", (link) => (link.pathname = link.pathname.replace(/[^/]+$/, "evil.tar"))],
      ["another key", (link) => link.searchParams.set("key", `${link.searchParams.get("key")}.1`)],
      ["another size", (link) => link.searchParams.set("size", "1")],
      ["another creation time", (link) => link.searchParams.set("created", "0")],
      ["a later expiry", (link) => link.searchParams.set("expires", String(Number(link.searchParams.get("expires")) + 3600))],
      ["public instead of private", (link) => link.searchParams.set("public", "1")],
      ["another signature", (link) => link.searchParams.set("signature", link.searchParams.get("signature")!.replace(/^./, (c) => (c === "0" ? "1" : "0")))],
      ...["key", "size", "created", "expires", "public", "signature"].map((name): [string, (link: URL) => void] => [`no ${name}`, (link) => link.searchParams.delete(name)]),
    ];
    it.each(tamperings)("%s", async (_, tamper) => {
      const namespace = uniqueName("tamper");
      const { repo, digest } = await pushed(SIZE, namespace);
      const redirect = await fetchWithEnv({ AUTH_MODE: "token", ...REDIRECT_ALL }, `/v2/${repo}/blobs/${digest}`, { headers: { Authorization: adminAuthorization() }, redirect: "manual" });
      const link = new URL(redirect.headers.get("Location")!);
      expect((await fetchAuthed(link.href, { method: "HEAD" })).status).toBe(200);
      tamper(link);
      for (const method of ["GET", "HEAD"]) {
        const response = await fetchAuthed(link.href, { method });
        expect(response.status).toBe(403);
        if (method === "GET") {
          const text = await response.text();
          expect(JSON.parse(text).errors[0].code).toBe("DENIED");
          expect(text).not.toContain(env.DOWNLOAD_SECRET);
        }
      }
    });
  });

  it("refuses an expired link: 403 DENIED saying so", async () => {
    const { digest } = await pushed(10);
    const expired = await signDownload(env.DOWNLOAD_SECRET!, {
      digest: digest as Digest,
      filename: "app-0123",
      objectKey: "blobs/any",
      size: 10,
      created: 0,
      expires: Math.floor(Date.now() / 1000) - 1,
      public: true,
    });
    const response = await fetchRegistry(expired);
    expect(response.status).toBe(403);
    const error = await firstError(response);
    expect(error?.code).toBe("DENIED");
    expect(error?.detail).toContain("expired");
  });
});

describe("the edge cache", () => {
  /** Pushes a blob, downloads it once (a miss: R2 read, cache filled), then removes its bytes from R2. */
  async function downloadedThenGone(authMode: "public" | "private", redirected: boolean) {
    const namespace = uniqueName(authMode);
    if (authMode === "public") await makePublic(namespace);
    const { repo, digest, bytes } = await pushed(SIZE, namespace);
    const get = (range?: string) => {
      const headers = new Headers(authMode === "private" ? { Authorization: adminAuthorization() } : {});
      if (range) headers.set("Range", range);
      return fetchWithEnv({ AUTH_MODE: "token", REDIRECT_MIN_BYTES: redirected ? "1" : String(SIZE + 1) }, `/v2/${repo}/blobs/${digest}`, { headers });
    };
    expect(await bytesOf(await get())).toEqual(bytes);
    const key = await env.DB.prepare("SELECT object_key FROM blobs WHERE digest = ?1").bind(digest).first<string>("object_key");
    await env.BLOBS.delete(key!);
    return { get, bytes };
  }

  it.each([
    ["a redirect's final hop", true],
    ["a blob answered directly", false],
  ])("serves a public blob from the edge cache after its first download: %s reads no R2 the second time, Range included", async (_, redirected) => {
    const { get, bytes } = await downloadedThenGone("public", redirected);
    const again = await get();
    expect(again.status).toBe(200);
    expect(again.headers.get("Content-Length")).toBe(String(SIZE));
    expect(await bytesOf(again)).toEqual(bytes);
    const ranged = await get("bytes=100-199");
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("Content-Range")).toBe(`bytes 100-199/${SIZE}`);
    expect(await bytesOf(ranged)).toEqual(bytes.subarray(100, 200));
  });

  it("does not keep a private blob: the second download reads R2 again", async () => {
    const { get } = await downloadedThenGone("private", true);
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    expect((await get()).status).toBe(500);
    expect(String(log.mock.calls[0]?.[0])).toContain("missing from R2");
  });
});

describe("SigV4 query signing (src/storage/r2-presign.ts)", () => {
  it("reproduces AWS's published presigned GET (examplebucket/test.txt, 2013-05-24, 86400 s)", async () => {
    const url = await presignUrl(
      "GET",
      "https://examplebucket.s3.amazonaws.com",
      "/test.txt",
      { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1" },
      new Date("2013-05-24T00:00:00Z"),
      86400,
    );
    expect(url).toBe(
      "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z" +
        "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
    );
  });
});
