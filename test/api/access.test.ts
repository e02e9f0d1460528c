import { exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { Action } from "../../src/auth/scopes";
import {
  adminAuthorization,
  basic,
  bearer,
  createRobot,
  createUser,
  fetchAuthed,
  forgeToken,
  grant,
  makePublic,
  PASSWORD,
  SERVICE,
  tokenFor,
  uniqueName,
} from "./auth";
import { digestOf, fetchRegistry, OCI_MANIFEST, openUpload, pushBlob, pushImage, putManifest, randomBytes, uniqueRepo, withDigest } from "./client";

/**
 * What a caller may do to the fixture's repository: nothing without
 * credentials, nothing at all with bad ones, or what a known caller (a user,
 * a robot, a token's bearer) is allowed, and how it is refused the rest.
 */
type Rights = { kind: "anonymous" } | { kind: "invalid" } | { kind: "known"; actions: Action[]; refusal: 401 | 403 };

const ANONYMOUS: Rights = { kind: "anonymous" };
const INVALID: Rights = { kind: "invalid" };
const known = (actions: Action[], refusal: 401 | 403): Rights => ({ kind: "known", actions, refusal });

interface Identity {
  name: string;
  authorization: () => string | undefined;
  rights: Rights;
  /** Whether it may pull the other namespace's repository (a mount's `from`). */
  pullsOther?: boolean;
}

interface Fixture {
  repo: string;
  /** A repository of another namespace, which only the administrator may pull. */
  other: string;
  blob: string;
  manifestDigest: string;
}

/** A request to make, made ready for one identity, and whether its effect took place afterwards. */
interface Prepared {
  path: string;
  init: RequestInit;
  effect?: () => Promise<boolean>;
}

interface Endpoint {
  id: string;
  /**
   * What the caller needs on the repository; "credentials" for GET /v2/;
   * "nothing" for the catalog, which shows each caller what it may pull; "login"
   * for /token, which takes a username and password or none, not a token.
   */
  needs: Action[] | "credentials" | "nothing" | "login";
  success: number;
  prepare: (f: Fixture) => Promise<Prepared>;
}

const exists = async (path: string) => (await fetchRegistry(path, { method: "HEAD" })).status === 200;

const ENDPOINTS: Endpoint[] = [
  { id: "end-1 GET /v2/", needs: "credentials", success: 200, prepare: async () => ({ path: "/v2/", init: {} }) },
  { id: "end-2 GET blob", needs: ["pull"], success: 200, prepare: async (f) => ({ path: `/v2/${f.repo}/blobs/${f.blob}`, init: {} }) },
  { id: "end-2 HEAD blob", needs: ["pull"], success: 200, prepare: async (f) => ({ path: `/v2/${f.repo}/blobs/${f.blob}`, init: { method: "HEAD" } }) },
  { id: "end-3 GET manifest", needs: ["pull"], success: 200, prepare: async (f) => ({ path: `/v2/${f.repo}/manifests/v1`, init: {} }) },
  { id: "end-3 HEAD manifest", needs: ["pull"], success: 200, prepare: async (f) => ({ path: `/v2/${f.repo}/manifests/${f.manifestDigest}`, init: { method: "HEAD" } }) },
  {
    id: "end-4a POST upload",
    needs: ["pull", "push"],
    success: 202,
    prepare: async (f) => ({ path: `/v2/${f.repo}/blobs/uploads/`, init: { method: "POST" } }),
  },
  {
    id: "end-4b POST monolithic",
    needs: ["pull", "push"],
    success: 201,
    prepare: async (f) => {
      const bytes = randomBytes(100);
      const digest = await digestOf(bytes);
      return { path: `/v2/${f.repo}/blobs/uploads/?digest=${digest}`, init: { method: "POST", body: bytes }, effect: () => exists(`/v2/${f.repo}/blobs/${digest}`) };
    },
  },
  {
    id: "end-5 PATCH",
    needs: ["pull", "push"],
    success: 202,
    prepare: async (f) => {
      const location = await openUpload(f.repo);
      return { path: location, init: { method: "PATCH", body: randomBytes(10) }, effect: async () => (await fetchRegistry(location)).headers.get("Range") === "0-9" };
    },
  },
  {
    id: "end-6 PUT",
    needs: ["pull", "push"],
    success: 201,
    prepare: async (f) => {
      const bytes = randomBytes(10);
      const digest = await digestOf(bytes);
      return { path: withDigest(await openUpload(f.repo), digest), init: { method: "PUT", body: bytes }, effect: () => exists(`/v2/${f.repo}/blobs/${digest}`) };
    },
  },
  {
    id: "end-7 PUT manifest",
    needs: ["pull", "push"],
    success: 201,
    prepare: async (f) => {
      const tag = uniqueName("t");
      const { bytes } = await pushImage(f.repo);
      return { path: `/v2/${f.repo}/manifests/${tag}`, init: { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body: bytes }, effect: () => exists(`/v2/${f.repo}/manifests/${tag}`) };
    },
  },
  { id: "end-8 GET tags", needs: ["pull"], success: 200, prepare: async (f) => ({ path: `/v2/${f.repo}/tags/list`, init: {} }) },
  {
    id: "end-9 DELETE manifest",
    needs: ["delete"],
    success: 202,
    prepare: async (f) => {
      const tag = uniqueName("d");
      const { bytes } = await pushImage(f.repo);
      expect((await putManifest(f.repo, tag, bytes)).status).toBe(201);
      return { path: `/v2/${f.repo}/manifests/${tag}`, init: { method: "DELETE" }, effect: async () => !(await exists(`/v2/${f.repo}/manifests/${tag}`)) };
    },
  },
  {
    id: "end-10 DELETE blob",
    needs: ["delete"],
    success: 202,
    prepare: async (f) => {
      const digest = await pushBlob(f.repo, randomBytes(50));
      return { path: `/v2/${f.repo}/blobs/${digest}`, init: { method: "DELETE" }, effect: async () => !(await exists(`/v2/${f.repo}/blobs/${digest}`)) };
    },
  },
  { id: "end-12 GET referrers", needs: ["pull"], success: 200, prepare: async (f) => ({ path: `/v2/${f.repo}/referrers/${f.manifestDigest}`, init: {} }) },
  { id: "end-13 GET upload", needs: ["pull", "push"], success: 204, prepare: async (f) => ({ path: await openUpload(f.repo), init: {} }) },
  {
    id: "end-14 DELETE upload",
    needs: ["pull", "push"],
    success: 204,
    prepare: async (f) => {
      const location = await openUpload(f.repo);
      return { path: location, init: { method: "DELETE" }, effect: async () => (await fetchRegistry(location)).status === 404 };
    },
  },
  { id: "GET /v2/_catalog", needs: "nothing", success: 200, prepare: async () => ({ path: "/v2/_catalog", init: {} }) },
  {
    id: "GET /token",
    needs: "login",
    success: 200,
    prepare: async (f) => ({ path: `/token?service=${SERVICE}&scope=repository:${f.repo}:pull`, init: {} }),
  },
];

/** The status an identity should get: success, 401 for bad or missing credentials or a token without the scope, 403 for a known caller without the right. */
function expectedStatus(endpoint: Endpoint, rights: Rights): number {
  if (rights.kind === "invalid") return 401;
  if (endpoint.needs === "nothing") return endpoint.success;
  // Known callers refused with 401 are tokens' bearers: /token wants a login instead.
  if (endpoint.needs === "login") return rights.kind === "known" && rights.refusal === 401 ? 401 : endpoint.success;
  if (rights.kind === "anonymous") return 401;
  if (endpoint.needs === "credentials") return endpoint.success;
  return endpoint.needs.every((action) => rights.actions.includes(action)) ? endpoint.success : rights.refusal;
}

/** The identities' names, known before beforeAll makes their credentials, so the table can list them. */
const IDENTITY_NAMES = [
  "anonymous",
  "Bearer QQ== (Homebrew's anonymous)",
  "a wrong password",
  "an expired token",
  "a token for another service",
  "a token signed by an unknown key",
  "a token for another repository",
  "a pull-only user",
  "a pusher",
  "a pusher's token",
  "a user who may delete",
  "the administrator",
  "a robot token",
];

describe("access control: every endpoint against every identity", () => {
  const fixture = {} as Fixture;
  const identities: Identity[] = [];

  beforeAll(async () => {
    fixture.repo = uniqueRepo(uniqueName("acl"));
    fixture.other = uniqueRepo(uniqueName("other"));
    const namespace = fixture.repo.split("/")[0]!;
    const { bytes } = await pushImage(fixture.repo);
    expect((await putManifest(fixture.repo, "v1", bytes)).status).toBe(201);
    fixture.manifestDigest = await digestOf(bytes);
    const layer = randomBytes(300);
    fixture.blob = await pushBlob(fixture.repo, layer);

    const [reader, pusher, deleter, robot] = [uniqueName("reader"), uniqueName("pusher"), uniqueName("deleter"), uniqueName("robot")];
    await createUser(reader, [grant(namespace, "pull")]);
    await createUser(pusher, [grant(namespace, "push")]);
    await createUser(deleter, [grant(`${namespace.slice(0, 4)}*`, "delete")]);
    const robotToken = await createRobot(robot, [grant(namespace, "push")]);
    const everything = [{ type: "repository", name: fixture.repo, actions: ["pull", "push", "delete"] }];
    const now = Math.floor(Date.now() / 1000);
    const foreignKey = await exportJWK((await generateKeyPair("ES256", { extractable: true })).privateKey);
    const pushersToken = await tokenFor(basic(pusher, PASSWORD), `repository:${fixture.repo}:pull,push`);
    const tokens = {
      expired: await forgeToken({ exp: now - 120, access: everything }),
      otherService: await forgeToken({ aud: "elsewhere.test", access: everything }),
      foreignKey: await forgeToken({ access: everything }, foreignKey),
      otherRepository: await forgeToken({ access: [{ type: "repository", name: fixture.other, actions: ["pull", "push", "delete"] }] }),
    };
    const all: Action[] = ["pull", "push", "delete"];
    identities.push(
      { name: "anonymous", authorization: () => undefined, rights: ANONYMOUS },
      { name: "Bearer QQ== (Homebrew's anonymous)", authorization: () => "Bearer QQ==", rights: ANONYMOUS },
      { name: "a wrong password", authorization: () => basic(pusher, "wrong"), rights: INVALID },
      { name: "an expired token", authorization: () => bearer(tokens.expired), rights: INVALID },
      { name: "a token for another service", authorization: () => bearer(tokens.otherService), rights: INVALID },
      { name: "a token signed by an unknown key", authorization: () => bearer(tokens.foreignKey), rights: INVALID },
      { name: "a token for another repository", authorization: () => bearer(tokens.otherRepository), rights: known([], 401), pullsOther: true },
      { name: "a pull-only user", authorization: () => basic(reader, PASSWORD), rights: known(["pull"], 403) },
      { name: "a pusher", authorization: () => basic(pusher, PASSWORD), rights: known(["pull", "push"], 403) },
      { name: "a pusher's token", authorization: () => bearer(pushersToken), rights: known(["pull", "push"], 401) },
      { name: "a user who may delete", authorization: () => basic(deleter, PASSWORD), rights: known(all, 403) },
      { name: "the administrator", authorization: adminAuthorization, rights: known(all, 403), pullsOther: true },
      { name: "a robot token", authorization: () => basic(robot, robotToken), rights: known(["pull", "push"], 403) },
    );
  });

  const cases = ENDPOINTS.flatMap((endpoint) => IDENTITY_NAMES.map((identity) => [endpoint.id, identity, endpoint] as const));

  it.each(cases)("%s as %s", async (_, identityName, endpoint) => {
    const identity = identities.find((i) => i.name === identityName)!;
    const prepared = await endpoint.prepare(fixture);
    const authorization = identity.authorization();
    const headers = new Headers(prepared.init.headers);
    if (authorization) headers.set("Authorization", authorization);
    // Each case its own client address: failed logins slow down only their own client.
    headers.set("CF-Connecting-IP", `198.51.${ENDPOINTS.indexOf(endpoint)}.${IDENTITY_NAMES.indexOf(identityName)}`);
    const response = await fetchAuthed(prepared.path, { ...prepared.init, headers });
    const expected = expectedStatus(endpoint, identity.rights);
    expect(response.status, await response.clone().text()).toBe(expected);
    const challenge = response.headers.get("WWW-Authenticate") ?? "";
    if (response.status === 401 && endpoint.needs === "login") expect(challenge).toMatch(/^Basic /);
    if (response.status === 401 && endpoint.needs !== "login") {
      expect(challenge).toContain(`realm="http://registry.test/token"`);
      expect(challenge).toContain(`service="${SERVICE}"`);
    }
    if (prepared.effect) expect(await prepared.effect()).toBe(expected < 300);
  });

  it.each(IDENTITY_NAMES)("end-11 mount from a repository it may not pull is an ordinary upload, as %s", async (identityName) => {
    const identity = identities.find((i) => i.name === identityName)!;
    const authorization = identity.authorization();
    const blob = await pushBlob(fixture.other, randomBytes(200));
    const headers: Record<string, string> = { "CF-Connecting-IP": `203.0.113.${IDENTITY_NAMES.indexOf(identityName)}` };
    if (authorization) headers.Authorization = authorization;
    const response = await fetchAuthed(`/v2/${fixture.repo}/blobs/uploads/?mount=${blob}&from=${fixture.other}`, { method: "POST", headers });
    const { rights } = identity;
    const expected = rights.kind === "invalid" || rights.kind === "anonymous" ? 401 : !rights.actions.includes("push") ? rights.refusal : identity.pullsOther ? 201 : 202;
    expect(response.status).toBe(expected);
    expect(await exists(`/v2/${fixture.repo}/blobs/${blob}`)).toBe(expected === 201);
  });
});

describe("blob responses", () => {
  it("are for shared caches only where anyone may pull", async () => {
    const [closed, open] = [uniqueRepo(uniqueName("cachea")), uniqueRepo(uniqueName("cacheb"))];
    await makePublic(open.split("/")[0]!);
    for (const [repo, cacheControl] of [
      [closed, "private, max-age=31536000, immutable"],
      [open, "public, max-age=31536000, immutable"],
    ] as const) {
      const digest = await pushBlob(repo, randomBytes(10));
      const response = await fetchAuthed(`/v2/${repo}/blobs/${digest}`, { headers: { Authorization: adminAuthorization() } });
      expect(response.status).toBe(200);
      expect(response.headers.get("Cache-Control")).toBe(cacheControl);
    }
  });
});

describe("the catalog", () => {
  it("lists only the repositories the caller may pull", async () => {
    const [mine, theirs, open] = [uniqueRepo(uniqueName("cata")), uniqueRepo(uniqueName("catb")), uniqueRepo(uniqueName("catc"))];
    for (const repo of [mine, theirs, open]) await pushBlob(repo, randomBytes(10));
    const user = uniqueName("cat");
    await createUser(user, [grant(mine.split("/")[0]!, "pull")]);
    await makePublic(open.split("/")[0]!);
    const list = async (authorization?: string) => {
      const response = await fetchAuthed("/v2/_catalog", authorization ? { headers: { Authorization: authorization } } : {});
      expect(response.status).toBe(200);
      const { repositories } = (await response.json()) as { repositories: string[] };
      return [mine, theirs, open].filter((repo) => repositories.includes(repo));
    };
    expect(await list(basic(user, PASSWORD))).toEqual([mine, open]);
    expect(await list()).toEqual([open]);
    expect(await list(adminAuthorization())).toEqual([mine, theirs, open]);
    expect(await list(bearer(await tokenFor(basic(user, PASSWORD), "registry:catalog:*")))).toEqual([mine, open]);
  });
});
