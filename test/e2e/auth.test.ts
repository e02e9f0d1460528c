import { readFile, writeFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AdminApi, adminSecrets, basicAuthorization, uniqueLogin, type Login } from "./admin-api";
import { attempt, MEDIA_TYPES, OciLayout, registryFetch, runWith, sha256, skopeo, Workspace, type ImageIndex, type ImageManifest, type Outcome } from "./clients";
import { decodedBody, leakedSecrets, RecordingProxy } from "./recording-proxy";

/*
 * skopeo, podman and plain HTTP (as Homebrew pulls) against the registry with access control on
 * (AUTH_MODE=token), through a proxy that records every exchange. Credentials go to auth files in
 * the test's workspace; the commands meant to have none get an empty auth file of their own, so
 * that no login left on the machine can stand in.
 */

const adminLogin = inject("admin");
const admin = new AdminApi(inject("securedRegistry"), adminLogin);

let ws: Workspace;
let proxy: RecordingProxy;
/** The proxy's address: what the clients know the registry as. */
let registry: string;
/** Every password and token the tests hand out, which no response may carry. */
const secrets = adminSecrets(adminLogin);

const IMAGE = "localhost/e2e-auth";
let imageId: string;
/** The image as an OCI layout, which skopeo pushes from. */
let layout: OciLayout;
let layoutDigest: string;
/** An auth file with no credentials in it. */
let noAuth: string;

/** The owner of a private namespace, and a user with no grant on it. */
let owner: Login;
let stranger: Login;

beforeAll(async () => {
  ws = await Workspace.create("auth");
  proxy = await RecordingProxy.start(inject("securedRegistry"));
  registry = proxy.address;
  imageId = await ws.buildImage({
    name: IMAGE,
    files: [{ path: "/data/random.bin", source: await ws.randomFile("random.bin", 32 * 1024) }],
    arch: "amd64",
    os: "linux",
  });
  layout = new OciLayout(ws.path("layout"));
  await ws.buildah("push", IMAGE, `oci:${layout.dir}:v1`);
  layoutDigest = (await layout.tagged("v1")).digest;
  noAuth = ws.path("no-auth.json");
  await writeFile(noAuth, "{}\n");
  owner = remember(await admin.createUser("owner"));
  stranger = remember(await admin.createUser("stranger"));
});

afterAll(async () => {
  await proxy?.stop();
  await ws?.remove();
});

function remember(login: Login): Login {
  secrets.set(`${login.username}'s password or token`, login.password);
  secrets.set(`${login.username}'s Basic credentials`, `${login.username}:${login.password}`);
  return login;
}

function skopeoAttempt(...args: string[]): Promise<Outcome> {
  return attempt("skopeo", args);
}

/** Pushes the layout's image to `repo` with `login`'s credentials, given on the command line. */
async function skopeoPush(repo: string, login: Login): Promise<void> {
  await skopeo.copy(`oci:${layout.dir}:v1`, `docker://${registry}/${repo}:v1`, "--preserve-digests", "--dest-creds", `${login.username}:${login.password}`);
}

/** The exit and output of a command expected to fail. */
function refusal(outcome: Outcome): string {
  expect(outcome.code, outcome.stdout).not.toBe(0);
  return outcome.stderr;
}

/** What clients pulling an image accept. */
const PULL_ACCEPT = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(", ");

/** A GET or HEAD of the registry, through the proxy, with Accept headers of an image pull (or `accept`). */
function pull(path: string, authorization?: string, method = "GET", accept = PULL_ACCEPT): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept };
  if (authorization) headers.Authorization = authorization;
  return registryFetch(registry, path, { method, headers });
}

async function errorCode(response: Response): Promise<string | undefined> {
  return ((await response.json()) as { errors: { code: string }[] }).errors[0]?.code;
}

describe("skopeo login, then skopeo copy pushes to the user's own namespace", () => {
  let authFile: string;
  let repo: string;

  beforeAll(async () => {
    authFile = ws.path("skopeo-auth.json");
    repo = `${owner.username}/skopeo`;
    await runWith("skopeo", ["login", "--tls-verify=false", "--authfile", authFile, "--username", owner.username, "--password-stdin", registry], { input: owner.password });
    await skopeo.copy(`oci:${layout.dir}:v1`, `docker://${registry}/${repo}:v1`, "--preserve-digests", "--dest-authfile", authFile);
  });

  it("keeps the login in the given auth file, for the registry's address", async () => {
    const auths = (JSON.parse(await readFile(authFile, "utf8")) as { auths: Record<string, unknown> }).auths;
    expect(Object.keys(auths)).toEqual([registry]);
  });

  it("serves the user the layout's manifest byte for byte, and its blobs", async () => {
    const response = await pull(`/v2/${repo}/manifests/v1`, basicAuthorization(owner));
    expect(response.status).toBe(200);
    expect(response.headers.get("Docker-Content-Digest")).toBe(layoutDigest);
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect(bytes).toEqual(new Uint8Array(await layout.blob(layoutDigest)));
    const manifest = JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest;
    for (const descriptor of [manifest.config, ...manifest.layers]) {
      const blob = await registryFetch(registry, `/v2/${repo}/blobs/${descriptor.digest}`, { headers: { Authorization: basicAuthorization(owner) } });
      expect(blob.status).toBe(200);
      expect(sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(descriptor.digest);
    }
  });

  it("pulls it back with the same auth file", async () => {
    const pulled = new OciLayout(ws.path("skopeo-pulled"));
    await skopeo.copy(`docker://${registry}/${repo}:v1`, `oci:${pulled.dir}:v1`, "--src-authfile", authFile);
    expect((await pulled.tagged("v1")).digest).toBe(layoutDigest);
  });

  it("refuses a push to another user's namespace with the same login", async () => {
    const outcome = await skopeoAttempt("copy", "--dest-tls-verify=false", "--dest-authfile", authFile, `oci:${layout.dir}:v1`, `docker://${registry}/${stranger.username}/skopeo:v1`);
    expect(refusal(outcome)).toMatch(/unauthorized|denied/i);
  });
});

describe("podman login, then podman push to the user's own namespace", () => {
  let authFile: string;
  let repo: string;
  let pushed: string;

  beforeAll(async () => {
    authFile = ws.path("podman-auth.json");
    repo = `${owner.username}/podman`;
    await runWith("podman", ws.podmanArgs("login", "--tls-verify=false", "--authfile", authFile, "--username", owner.username, "--password-stdin", registry), { input: owner.password });
    // podman's storage is its own: the image goes there from the layout (podman 4.3 would name it after the layout's path).
    await skopeo.copy(`oci:${layout.dir}:v1`, `containers-storage:[vfs@${ws.path("podman", "root")}+${ws.path("podman", "run")}]${IMAGE}:v1`);
    const digestFile = ws.path("podman-digest");
    await ws.podman("push", "--tls-verify=false", "--authfile", authFile, "--digestfile", digestFile, imageId, `docker://${registry}/${repo}:v1`);
    pushed = (await readFile(digestFile, "utf8")).trim();
  });

  it("keeps the login in the given auth file, for the registry's address", async () => {
    const auths = (JSON.parse(await readFile(authFile, "utf8")) as { auths: Record<string, unknown> }).auths;
    expect(Object.keys(auths)).toEqual([registry]);
  });

  it("serves the user the manifest podman pushed, whose config is the image", async () => {
    const response = await pull(`/v2/${repo}/manifests/v1`, basicAuthorization(owner));
    expect(response.status).toBe(200);
    expect(response.headers.get("Docker-Content-Digest")).toBe(pushed);
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect(sha256(bytes)).toBe(pushed);
    expect((JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest).config.digest).toBe(`sha256:${imageId}`);
  });

  it("logs out, and then may not pull its own image", async () => {
    await ws.podman("logout", "--authfile", authFile, registry);
    const outcome = await attempt("podman", ws.podmanArgs("pull", "--tls-verify=false", "--authfile", authFile, `${registry}/${repo}:v1`));
    expect(refusal(outcome)).toMatch(/unauthorized|denied/i);
  });
});

describe("a public namespace: anyone pulls, with no credentials at all or Homebrew's Bearer QQ==", () => {
  let namespace: string;
  let repo: string;
  /** The image index pushed there (one linux/amd64 image), as Homebrew's bottles are. */
  let indexDigest: string;
  let index: ImageIndex;
  let manifest: ImageManifest;

  beforeAll(async () => {
    namespace = uniqueLogin("public");
    repo = `${namespace}/tool`;
    const publisher = remember(await admin.createUser("publisher"));
    await admin.grant(publisher.username, namespace, "push");
    await admin.setPublic(namespace, true);
    const list = "localhost/e2e-auth-list";
    await ws.buildah("manifest", "create", list);
    await ws.buildah("manifest", "add", list, IMAGE);
    const digestFile = ws.path("index-digest");
    await ws.buildah("manifest", "push", "--all", "--tls-verify=false", "--creds", `${publisher.username}:${publisher.password}`, "--digestfile", digestFile, list, `docker://${registry}/${repo}:1.0`);
    indexDigest = (await readFile(digestFile, "utf8")).trim();
  });

  it("skopeo copy --src-no-creds pulls the index and its image", async () => {
    const pulled = new OciLayout(ws.path("public-skopeo"));
    await skopeo.copy(`docker://${registry}/${repo}:1.0`, `oci:${pulled.dir}:1.0`, "--src-no-creds", "--multi-arch", "all");
    expect((await pulled.tagged("1.0")).digest).toBe(indexDigest);
    index = await pulled.json<ImageIndex>(indexDigest);
    expect(index.manifests).toHaveLength(1);
    manifest = await pulled.json<ImageManifest>(index.manifests[0]!.digest);
    expect(manifest.config.digest).toBe(`sha256:${imageId}`);
  });

  it("podman pulls it with an empty auth file", async () => {
    await ws.podman("pull", "--tls-verify=false", "--authfile", noAuth, `${registry}/${repo}:1.0`);
    const [inspected] = JSON.parse((await ws.podman("image", "inspect", `${registry}/${repo}:1.0`)).stdout) as { Id: string }[];
    expect(inspected!.Id).toBe(imageId);
  });

  // Homebrew's own sequence (HEAD then GET of the index, accepting only an index; then the blob it
  // names), for either way of saying "nobody": no Authorization, and Homebrew's fixed Bearer QQ==.
  for (const [who, authorization] of [
    ["no Authorization header", undefined],
    ["Authorization: Bearer QQ==", "Bearer QQ=="],
  ] as const) {
    it(`answers HEAD then GET of the index, GET of its manifest and of a layer, with ${who}`, async () => {
      const head = await pull(`/v2/${repo}/manifests/1.0`, authorization, "HEAD", MEDIA_TYPES.ociIndex);
      expect(head.status).toBe(200);
      expect(head.headers.get("Content-Type")).toBe(MEDIA_TYPES.ociIndex);
      expect(head.headers.get("Docker-Content-Digest")).toBe(indexDigest);

      const get = await pull(`/v2/${repo}/manifests/1.0`, authorization, "GET", MEDIA_TYPES.ociIndex);
      expect(get.status).toBe(200);
      const indexBytes = new Uint8Array(await get.arrayBuffer());
      expect(sha256(indexBytes)).toBe(indexDigest);
      expect(Number(head.headers.get("Content-Length"))).toBe(indexBytes.length);

      const child = (JSON.parse(new TextDecoder().decode(indexBytes)) as ImageIndex).manifests[0]!;
      const manifestResponse = await pull(`/v2/${repo}/manifests/${child.digest}`, authorization, "GET", MEDIA_TYPES.ociManifest);
      expect(manifestResponse.status).toBe(200);
      const manifestBytes = new Uint8Array(await manifestResponse.arrayBuffer());
      expect(sha256(manifestBytes)).toBe(child.digest);

      const layer = (JSON.parse(new TextDecoder().decode(manifestBytes)) as ImageManifest).layers[0]!;
      const blob = await registryFetch(registry, `/v2/${repo}/blobs/${layer.digest}`, authorization ? { headers: { Authorization: authorization } } : {});
      expect(blob.status).toBe(200);
      expect(blob.headers.get("Content-Length")).toBe(String(layer.size));
      expect(blob.headers.get("Accept-Ranges")).toBe("bytes");
      expect(sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(layer.digest);
    });
  }

  it("refuses an anonymous push to it: public is pull only", async () => {
    const outcome = await skopeoAttempt("copy", "--dest-tls-verify=false", "--dest-no-creds", `oci:${layout.dir}:v1`, `docker://${registry}/${namespace}/anonymous:v1`);
    expect(refusal(outcome)).toMatch(/unauthorized|denied/i);
    const upload = await registryFetch(registry, `/v2/${namespace}/anonymous/blobs/uploads/`, { method: "POST", headers: { Authorization: "Bearer QQ==" } });
    expect(upload.status).toBe(401);
    expect(await errorCode(upload)).toBe("UNAUTHORIZED");
  });
});

describe("a private namespace refuses a pull without credentials", () => {
  let repo: string;
  let layer: string;

  beforeAll(async () => {
    repo = `${owner.username}/private`;
    await skopeoPush(repo, owner);
    layer = (await layout.json<ImageManifest>(layoutDigest)).layers[0]!.digest;
  });

  it("skopeo --src-no-creds exits non-zero, saying unauthorized", async () => {
    const outcome = await skopeoAttempt("copy", "--src-tls-verify=false", "--src-no-creds", `docker://${registry}/${repo}:v1`, `oci:${ws.path("private-skopeo")}:v1`);
    expect(refusal(outcome)).toMatch(/unauthorized|denied/i);
  });

  it("podman with an empty auth file exits non-zero, saying unauthorized", async () => {
    const outcome = await attempt("podman", ws.podmanArgs("pull", "--tls-verify=false", "--authfile", noAuth, `${registry}/${repo}:v1`));
    expect(refusal(outcome)).toMatch(/unauthorized|denied/i);
  });

  for (const [who, authorization] of [
    ["no Authorization header", undefined],
    ["Authorization: Bearer QQ==", "Bearer QQ=="],
  ] as const) {
    it(`answers HEAD and GET of the manifest, and GET of a blob, 401 with a Bearer challenge naming the token service and the pull scope, with ${who}`, async () => {
      const challenge = `Bearer realm="http://${registry}/token",service="${registry}",scope="repository:${repo}:pull"`;
      for (const [method, path] of [
        ["HEAD", `/v2/${repo}/manifests/v1`],
        ["GET", `/v2/${repo}/manifests/v1`],
        ["GET", `/v2/${repo}/blobs/${layer}`],
      ] as const) {
        const response = await pull(path, authorization, method);
        expect(response.status, `${method} ${path}`).toBe(401);
        expect(response.headers.get("WWW-Authenticate")).toBe(challenge);
        if (method === "GET") expect(await errorCode(response)).toBe("UNAUTHORIZED");
      }
    });
  }

  it("gives an anonymous caller a token that grants nothing on it, which the registry refuses", async () => {
    const token = await registryFetch(registry, `/token?service=${encodeURIComponent(registry)}&scope=repository:${repo}:pull`);
    expect(token.status).toBe(200);
    const { token: bearer } = (await token.json()) as { token: string };
    const response = await pull(`/v2/${repo}/manifests/v1`, `Bearer ${bearer}`);
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toContain('error="insufficient_scope"');
  });
});

describe("a private namespace refuses the credentials of a user without a grant on it", () => {
  let repo: string;

  beforeAll(async () => {
    repo = `${owner.username}/granted`;
    await skopeoPush(repo, owner);
  });

  it("skopeo --src-creds exits non-zero, saying unauthorized or denied", async () => {
    const outcome = await skopeoAttempt("copy", "--src-tls-verify=false", "--src-creds", `${stranger.username}:${stranger.password}`, `docker://${registry}/${repo}:v1`, `oci:${ws.path("stranger-skopeo")}:v1`);
    expect(refusal(outcome)).toMatch(/unauthorized|denied/i);
  });

  it("podman --creds exits non-zero, saying unauthorized or denied", async () => {
    const outcome = await attempt("podman", ws.podmanArgs("pull", "--tls-verify=false", "--authfile", noAuth, "--creds", `${stranger.username}:${stranger.password}`, `${registry}/${repo}:v1`));
    expect(refusal(outcome)).toMatch(/unauthorized|denied/i);
  });

  it("answers the user's Basic credentials 403 DENIED", async () => {
    const response = await pull(`/v2/${repo}/manifests/v1`, basicAuthorization(stranger));
    expect(response.status).toBe(403);
    expect(await errorCode(response)).toBe("DENIED");
  });

  it("issues the user a token with no action on it, which the registry refuses", async () => {
    const token = await registryFetch(registry, `/token?service=${encodeURIComponent(registry)}&scope=repository:${repo}:pull`, { headers: { Authorization: basicAuthorization(stranger) } });
    expect(token.status).toBe(200);
    const { token: bearer } = (await token.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(bearer.split(".")[1]!, "base64url").toString()) as { sub: string; access: unknown[] };
    expect(claims).toMatchObject({ sub: stranger.username, access: [{ type: "repository", name: repo, actions: [] }] });
    const response = await pull(`/v2/${repo}/manifests/v1`, `Bearer ${bearer}`);
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toContain('error="insufficient_scope"');
  });

  it("lets the same user pull once granted pull on the namespace", async () => {
    await admin.grant(stranger.username, owner.username, "pull");
    const pulled = new OciLayout(ws.path("granted-skopeo"));
    await skopeo.copy(`docker://${registry}/${repo}:v1`, `oci:${pulled.dir}:v1`, "--src-creds", `${stranger.username}:${stranger.password}`);
    expect((await pulled.tagged("v1")).digest).toBe(layoutDigest);
  });
});

describe("what the registry answered skopeo, podman, buildah and plain HTTP", () => {
  it("carries no password, in any header or body (bodies decompressed)", () => {
    const tokens = proxy.to("GET", /^\/token$/).filter((exchange) => exchange.status === 200);
    expect(tokens.length).toBeGreaterThan(0);
    for (const exchange of tokens) expect(JSON.parse(decodedBody(exchange).toString())).toHaveProperty("token");
    expect(leakedSecrets(proxy.exchanges, secrets)).toEqual([]);
  });
});
