import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AdminApi, adminSecrets, basicAuthorization, uniqueLogin, type Login } from "./admin-api";
import { attempt, MEDIA_TYPES, registryFetch, runWith, sha256, Workspace, type Outcome } from "./clients";
import { Dockerd } from "./daemons";
import { decodedBody, leakedSecrets, RecordingProxy, type Exchange } from "./recording-proxy";

/*
 * docker against the registry with access control on (AUTH_MODE=token), through a proxy that
 * records every exchange. Each login keeps its credentials in a docker config directory of its
 * own, under the test's workspace.
 */

const adminLogin = inject("admin");
const admin = new AdminApi(inject("securedRegistry"), adminLogin);

let ws: Workspace;
let proxy: RecordingProxy;
/** The proxy's address: what docker knows the registry as. */
let registry: string;
let dockerd: Dockerd;
/** Every password and token the tests hand out, which no response may carry. */
const secrets = adminSecrets(adminLogin);

const IMAGE = "localhost/e2e-auth-docker";
let imageId: string;

beforeAll(async () => {
  ws = await Workspace.create("auth-docker");
  proxy = await RecordingProxy.start(inject("securedRegistry"));
  registry = proxy.address;
  dockerd = await Dockerd.start(ws.path("daemons"), { insecureRegistry: registry });
  await ws.randomFile("one.bin", 32 * 1024);
  await ws.file("Dockerfile", "FROM scratch\nCOPY one.bin /one.bin\n");
  imageId = await dockerd.build(ws.path("files"), IMAGE);
});

afterAll(async () => {
  try {
    await dockerd?.stop();
  } finally {
    await proxy?.stop();
    await ws?.remove();
  }
});

function remember(login: Login): Login {
  secrets.set(`${login.username}'s password or token`, login.password);
  secrets.set(`${login.username}'s Basic credentials`, `${login.username}:${login.password}`);
  return login;
}

/** The docker client with its credentials in `configDir`. */
function docker(configDir: string, ...args: string[]): Promise<Outcome> {
  return attempt("docker", ["--config", configDir, ...dockerd.dockerArgs(...args)]);
}

async function dockerLogin(configDir: string, login: Login): Promise<void> {
  await runWith("docker", ["--config", configDir, ...dockerd.dockerArgs("login", "--username", login.username, "--password-stdin", registry)], { input: login.password });
}

/** Tags `image` as `reference` and pushes it with the credentials of `configDir`; the push's outcome. */
async function push(configDir: string, image: string, reference: string): Promise<Outcome> {
  await dockerd.docker("tag", image, reference);
  return docker(configDir, "push", reference);
}

/** The manifest digest a successful docker push reports. */
function pushedDigest(outcome: Outcome): string {
  expect(outcome.stderr, outcome.stderr).toBe("");
  expect(outcome.code).toBe(0);
  const digest = /: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(outcome.stdout)?.[1];
  if (!digest) throw new Error(`docker push reported no digest:\n${outcome.stdout}`);
  return digest;
}

/** A request to the registry (through the proxy) as the bootstrap administrator, who sees everything. */
function asAdmin(path: string, init: RequestInit = {}): Promise<Response> {
  return registryFetch(registry, path, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: basicAuthorization(adminLogin) } });
}

/** The tags of a repository, as the administrator sees them: null when the registry knows no such repository. */
async function tagsOf(repo: string): Promise<string[] | null> {
  const response = await asAdmin(`/v2/${repo}/tags/list`);
  if (response.status === 404) return null;
  expect(response.status).toBe(200);
  return ((await response.json()) as { tags: string[] }).tags;
}

async function catalog(): Promise<string[]> {
  const response = await asAdmin("/v2/_catalog");
  expect(response.status).toBe(200);
  return ((await response.json()) as { repositories: string[] }).repositories;
}

describe("docker login with a user's password, then push and pull in the user's own namespace", () => {
  let user: Login;
  let configDir: string;
  let repo: string;
  let digest: string;

  /** What docker asked and the registry answered, from the login to the end of the push. */
  let exchanges: Exchange[];

  beforeAll(async () => {
    user = remember(await admin.createUser("docker-user"));
    configDir = ws.path("config-user");
    repo = `${user.username}/app`;
    const since = proxy.exchanges.length;
    await dockerLogin(configDir, user);
    digest = pushedDigest(await push(configDir, IMAGE, `${registry}/${repo}:v1`));
    exchanges = proxy.exchanges.slice(since).filter((exchange) => exchange.requestHeaders["user-agent"]?.startsWith("docker/"));
  });

  it("logs in with GET /token (offline_token=true) and keeps the refresh token it gets, not the password, in its own config directory", async () => {
    const login = exchanges.find((exchange) => exchange.path.startsWith("/token?"))!;
    expect(new URL(login.path, "http://x").searchParams.get("offline_token")).toBe("true");
    expect(login.status).toBe(200);
    const { refresh_token: refreshToken } = JSON.parse(decodedBody(login).toString()) as { refresh_token?: string };
    expect(refreshToken).toBeTypeOf("string");
    const text = await readFile(`${configDir}/config.json`, "utf8");
    const config = JSON.parse(text) as { auths: Record<string, { identitytoken?: string }> };
    expect(Object.keys(config.auths)).toEqual([registry]);
    expect(config.auths[registry]!.identitytoken).toBe(refreshToken);
    expect(text).not.toContain(user.password);
    expect(text).not.toContain(Buffer.from(`${user.username}:${user.password}`).toString("base64"));
  });

  it("pushes with access tokens from POST /token's refresh_token grant: every request under /v2/ carries a Bearer token", () => {
    const tokens = exchanges.filter((exchange) => exchange.method === "POST" && exchange.path === "/token");
    expect(tokens.length).toBeGreaterThan(0);
    for (const exchange of tokens) {
      expect(exchange.status).toBe(200);
      expect(Object.fromEntries(new URLSearchParams(exchange.requestBody.toString()))).toMatchObject({ grant_type: "refresh_token", client_id: "docker", service: registry });
    }
    const pushed = exchanges.filter((exchange) => exchange.path.startsWith(`/v2/${repo}/`));
    expect(pushed.map((exchange) => `${exchange.method} ${exchange.status}`)).toContain("PUT 201");
    for (const exchange of pushed) expect(exchange.requestHeaders.authorization).toMatch(/^Bearer /);
  });

  it("serves the pushed manifest to the user, under the digest docker reports", async () => {
    const response = await registryFetch(registry, `/v2/${repo}/manifests/v1`, { headers: { Accept: MEDIA_TYPES.dockerManifest, Authorization: basicAuthorization(user) } });
    expect(response.status).toBe(200);
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(sha256(new Uint8Array(await response.arrayBuffer()))).toBe(digest);
  });

  it("pulls the image back, once removed from the daemon, with the same digest and image ID", async () => {
    const reference = `${registry}/${repo}:v1`;
    await dockerd.docker("image", "rm", reference);
    expect((await docker(configDir, "image", "inspect", reference)).code).not.toBe(0);
    const pulled = await docker(configDir, "pull", reference);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toContain(`Digest: ${digest}`);
    const [inspected] = JSON.parse((await dockerd.docker("image", "inspect", reference)).stdout) as { Id: string; RepoDigests: string[] }[];
    expect(inspected!.Id).toBe(imageId);
    expect(inspected!.RepoDigests).toContain(`${registry}/${repo}@${digest}`);
  });
});

describe("a second user's docker login and push, then docker logout: an anonymous push is refused and stores nothing", () => {
  let user: Login;
  let configDir: string;
  /** The user's push while logged in, which comes after another user's push of the same image. */
  let firstPush: Outcome;
  let refused: Outcome;
  /** A repository of the user's that only the anonymous push would have made. */
  let repo: string;

  beforeAll(async () => {
    user = remember(await admin.createUser("docker-logout"));
    configDir = ws.path("config-logout");
    await dockerLogin(configDir, user);
    firstPush = await push(configDir, IMAGE, `${registry}/${user.username}/app:v1`);
    pushedDigest(firstPush);
    const logout = await docker(configDir, "logout", registry);
    expect(logout.code, logout.stderr).toBe(0);
    expect((JSON.parse(await readFile(`${configDir}/config.json`, "utf8")) as { auths: Record<string, unknown> }).auths).toEqual({});
    repo = `${user.username}/anonymous`;
    refused = await push(configDir, IMAGE, `${registry}/${repo}:v1`);
  });

  it("uploads the layers rather than mount them from the first user's repository, which it may not read", () => {
    expect(firstPush.stdout).not.toMatch(/Mounted from/);
    const mounts = proxy.to("POST", new RegExp(`^/v2/${user.username}/app/blobs/uploads/$`)).filter((exchange) => exchange.path.includes("mount="));
    expect(mounts.length).toBeGreaterThan(0);
    for (const mount of mounts) expect(mount.status).toBe(202);
  });

  it("fails the push with a message saying unauthorized or denied", () => {
    expect(refused.code).not.toBe(0);
    expect(refused.stderr + refused.stdout).toMatch(/unauthorized|denied/i);
  });

  it("leaves no trace of the repository: no tags, not in the catalog", async () => {
    expect(await tagsOf(repo)).toBeNull();
    expect(await catalog()).not.toContain(repo);
    expect(await catalog()).toContain(`${user.username}/app`);
  });

  it("refuses an anonymous pull of the user's image too", async () => {
    const pulled = await docker(configDir, "pull", `${registry}/${user.username}/app:v1`);
    expect(pulled.code).not.toBe(0);
    expect(pulled.stderr).toMatch(/unauthorized|denied/i);
  });
});

describe("a robot token with push on a namespace pushes with docker login, and nothing once revoked", () => {
  let namespace: string;
  let robot: Login;
  let configDir: string;
  let digest: string;

  beforeAll(async () => {
    namespace = uniqueLogin("robots");
    robot = remember(await admin.createRobot("docker-robot", [{ pattern: namespace, role: "push" }]));
    configDir = ws.path("config-robot");
    await dockerLogin(configDir, robot);
    digest = pushedDigest(await push(configDir, IMAGE, `${registry}/${namespace}/app:v1`));
  });

  it("pushes to the namespace: the registry serves the manifest under docker's digest", async () => {
    const head = await asAdmin(`/v2/${namespace}/app/manifests/v1`, { method: "HEAD", headers: { Accept: MEDIA_TYPES.dockerManifest } });
    expect(head.status).toBe(200);
    expect(head.headers.get("Docker-Content-Digest")).toBe(digest);
  });

  it("may not push outside its namespace", async () => {
    const outside = await push(configDir, IMAGE, `${registry}/${uniqueLogin("elsewhere")}/app:v1`);
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toMatch(/unauthorized|denied/i);
  });

  it("fails to push once the token is revoked, and the new tag is not stored", async () => {
    await admin.revokeRobot(robot.username);
    const refused = await push(configDir, IMAGE, `${registry}/${namespace}/app:v2`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/unauthorized|denied/i);
    expect(await tagsOf(`${namespace}/app`)).toEqual(["v1"]);
  });
});

describe("docker pull from a public namespace needs no login", () => {
  let repo: string;
  let digest: string;

  beforeAll(async () => {
    const user = remember(await admin.createUser("docker-public"));
    const configDir = ws.path("config-public-owner");
    await dockerLogin(configDir, user);
    repo = `${user.username}/app`;
    digest = pushedDigest(await push(configDir, IMAGE, `${registry}/${repo}:v1`));
    await admin.setPublic(user.username, true);
    await dockerd.docker("image", "rm", `${registry}/${repo}:v1`);
  });

  it("pulls the image with an empty docker config, under the pushed digest", async () => {
    const pulled = await docker(ws.path("config-anonymous"), "pull", `${registry}/${repo}:v1`);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toContain(`Digest: ${digest}`);
  });

  it("still refuses an anonymous push there", async () => {
    const refused = await push(ws.path("config-anonymous"), IMAGE, `${registry}/${repo}:v2`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/unauthorized|denied/i);
    expect(await tagsOf(repo)).toEqual(["v1"]);
  });
});

describe("what the registry answered docker", () => {
  it("carries no password or robot token, in any header or body (bodies decompressed)", () => {
    const tokens = [...proxy.to("GET", /^\/token$/), ...proxy.to("POST", /^\/token$/)].filter((exchange) => exchange.status === 200);
    expect(tokens.length).toBeGreaterThan(0);
    for (const exchange of tokens) expect(JSON.parse(decodedBody(exchange).toString())).toHaveProperty("token");
    expect(leakedSecrets(proxy.exchanges, secrets)).toEqual([]);
  });
});
