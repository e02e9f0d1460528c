import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AdminApi, adminSecrets, basicAuthorization, type Login } from "./admin-api";
import { attempt, MEDIA_TYPES, OciLayout, registryFetch, run, Workspace, type ImageManifest, type Outcome } from "./clients";
import { Containerd } from "./daemons";
import { decodedBody, leakedSecrets, RecordingProxy, type Exchange } from "./recording-proxy";

/*
 * containerd's ctr against the registry with access control on (AUTH_MODE=token), through a proxy
 * that records every exchange. With --user, containerd asks the token service in OAuth2's form
 * (POST /token, grant_type=password) and falls back to GET /token when that is refused.
 */

const adminLogin = inject("admin");
const admin = new AdminApi(inject("securedRegistry"), adminLogin);

let ws: Workspace;
let proxy: RecordingProxy;
/** The proxy's address: what containerd knows the registry as. */
let registry: string;
let containerd: Containerd;
/** Every password the tests hand out, which no response may carry. */
const secrets = adminSecrets(adminLogin);

const IMAGE = "localhost/e2e-auth-containerd";
let layout: OciLayout;
/** The layout as the archive `ctr images import` reads. */
let archive: string;
let manifestDigest: string;
let manifest: ImageManifest;
let user: Login;

beforeAll(async () => {
  ws = await Workspace.create("auth-containerd");
  proxy = await RecordingProxy.start(inject("securedRegistry"));
  registry = proxy.address;
  containerd = await Containerd.start(ws.path("containerd"));
  await ws.buildImage({ name: IMAGE, files: [{ path: "/one.bin", source: await ws.randomFile("one.bin", 32 * 1024) }] });
  layout = new OciLayout(ws.path("layout"));
  await ws.buildah("push", IMAGE, `oci:${layout.dir}:v1`);
  archive = ws.path("image.tar");
  await run("tar", ["-cf", archive, "-C", layout.dir, "oci-layout", "index.json", "blobs"]);
  manifestDigest = (await layout.tagged("v1")).digest;
  manifest = await layout.json<ImageManifest>(manifestDigest);
  user = await admin.createUser("ctr-user");
  secrets.set("the user's password", user.password);
  secrets.set("the user's Basic credentials", `${user.username}:${user.password}`);
});

afterAll(async () => {
  try {
    await containerd?.stop();
  } finally {
    await proxy?.stop();
    await ws?.remove();
  }
});

/** Imports the archive as `<registry>/<repo>:v1`; returns that reference. */
async function importAs(repo: string): Promise<string> {
  await containerd.ctr("images", "import", "--no-unpack", "--base-name", `${registry}/${repo}`, archive);
  return `${registry}/${repo}:v1`;
}

function ctr(...args: string[]): Promise<Outcome> {
  return attempt("ctr", ["--address", containerd.socket, ...args]);
}

/** The token requests made through the proxy since `since` exchanges, in order. */
function tokenRequests(since: number): Exchange[] {
  return proxy.exchanges.slice(since).filter((exchange) => exchange.path.split("?")[0] === "/token");
}

/** A POST /token's form, without the password. */
function formOf(exchange: Exchange): Record<string, string> {
  const form = Object.fromEntries(new URLSearchParams(exchange.requestBody.toString()));
  delete form.password;
  return form;
}

async function tagsOf(repo: string): Promise<number> {
  return (await registryFetch(registry, `/v2/${repo}/tags/list`, { headers: { Authorization: basicAuthorization(adminLogin) } })).status;
}

describe("ctr images push --user with a user's password pushes through containerd's OAuth2 form, POST /token", () => {
  let repo: string;
  let tokens: Exchange[];

  beforeAll(async () => {
    repo = `${user.username}/app`;
    const reference = await importAs(repo);
    const since = proxy.exchanges.length;
    await containerd.ctr("images", "push", "--plain-http", "--user", `${user.username}:${user.password}`, reference);
    tokens = tokenRequests(since);
  });

  it("asks POST /token for push on the repository with grant_type=password and the login, and needs no GET", () => {
    expect(tokens.length).toBeGreaterThan(0);
    for (const exchange of tokens) {
      expect(exchange.method).toBe("POST");
      expect(exchange.status).toBe(200);
      expect(exchange.requestHeaders["content-type"]).toMatch(/^application\/x-www-form-urlencoded/);
      expect(formOf(exchange)).toMatchObject({ grant_type: "password", username: user.username, service: registry });
    }
    expect(tokens.map((exchange) => formOf(exchange).scope).join(" ").split(" ")).toContain(`repository:${repo}:pull,push`);
  });

  it("is answered a token, access_token, expires_in and issued_at, and the token grants pull and push", () => {
    const body = JSON.parse(decodedBody(tokens[0]!).toString()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(body.issued_at))).toBe(false);
    const claims = JSON.parse(Buffer.from(body.token.split(".")[1]!, "base64url").toString()) as { sub: string; access: { name: string; actions: string[] }[] };
    expect(claims.sub).toBe(user.username);
    expect(claims.access).toContainEqual({ type: "repository", name: repo, actions: ["pull", "push"] });
  });

  it("leaves the registry serving the layout's manifest and blobs to the user", async () => {
    const authorization = basicAuthorization(user);
    const response = await registryFetch(registry, `/v2/${repo}/manifests/v1`, { headers: { Accept: MEDIA_TYPES.ociManifest, Authorization: authorization } });
    expect(response.status).toBe(200);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(new Uint8Array(await layout.blob(manifestDigest)));
    for (const { digest } of [manifest.config, ...manifest.layers]) {
      const blob = await registryFetch(registry, `/v2/${repo}/blobs/${digest}`, { headers: { Authorization: authorization } });
      expect(new Uint8Array(await blob.arrayBuffer())).toEqual(new Uint8Array(await layout.blob(digest)));
    }
  });

  it("pulls it back with --user, and not without", async () => {
    const reference = `${registry}/${repo}:v1`;
    await containerd.ctr("images", "rm", "--sync", reference);
    const anonymous = await ctr("images", "pull", "--plain-http", reference);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/unauthorized|denied|401/i);
    await containerd.ctr("images", "pull", "--plain-http", "--user", `${user.username}:${user.password}`, reference);
    const listed = (await containerd.ctr("images", "ls", `name==${reference}`)).stdout;
    expect(listed).toContain(manifestDigest);
  });
});

describe("ctr images push --user with a wrong password: POST /token refused, then the GET fallback refused, nothing stored", () => {
  let repo: string;
  let outcome: Outcome;
  let tokens: Exchange[];

  beforeAll(async () => {
    repo = `${user.username}/wrong`;
    const reference = await importAs(repo);
    const since = proxy.exchanges.length;
    outcome = await ctr("images", "push", "--plain-http", "--user", `${user.username}:not-${user.password}`, reference);
    tokens = tokenRequests(since);
  });

  it("fails the push, saying unauthorized", () => {
    expect(outcome.code).not.toBe(0);
    expect(outcome.stderr).toMatch(/unauthorized|401/i);
  });

  it("tried POST /token, then GET /token with the same login as Basic credentials, both 401", () => {
    expect(tokens.map((exchange) => `${exchange.method} ${exchange.status}`).slice(0, 2)).toEqual(["POST 401", "GET 401"]);
    expect(tokens[1]!.requestHeaders.authorization).toMatch(/^Basic /);
  });

  it("leaves no repository behind", async () => {
    expect(await tagsOf(repo)).toBe(404);
  });
});

describe("ctr images push with no --user is refused and stores nothing", () => {
  it("fails, saying the anonymous token lacks the scope, and the repository does not exist", async () => {
    const repo = `${user.username}/anonymous`;
    const outcome = await ctr("images", "push", "--plain-http", await importAs(repo));
    expect(outcome.code).not.toBe(0);
    // containerd reports the challenge's error: "server message: insufficient_scope: authorization failed".
    expect(outcome.stderr).toMatch(/insufficient_scope|unauthorized|denied/i);
    expect(await tagsOf(repo)).toBe(404);
  });
});

describe("what the registry answered containerd", () => {
  it("carries no password, in any header or body (bodies decompressed)", () => {
    expect(proxy.to("POST", /^\/token$/).filter((exchange) => exchange.status === 200).length).toBeGreaterThan(0);
    expect(leakedSecrets(proxy.exchanges, secrets)).toEqual([]);
  });
});
