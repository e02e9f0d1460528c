import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { administer, adminAuthorization, basic, createRobot, createUser, fetchAuthed, grant, PASSWORD, uniqueName } from "./auth";
import { errorCode, fetchWithEnv, pushBlob, randomBytes, uniqueRepo } from "./client";

const pull = (repo: string, digest: string, authorization?: string) =>
  fetchAuthed(`/v2/${repo}/blobs/${digest}`, { method: "HEAD", headers: authorization ? { Authorization: authorization } : {} });

describe("the administration API", () => {
  it("is for administrators only: 401 without credentials, 403 for a user", async () => {
    const user = uniqueName("plain");
    await createUser(user);
    expect((await fetchAuthed("/admin/users")).status).toBe(401);
    const denied = await fetchAuthed("/admin/users", { headers: { Authorization: basic(user, PASSWORD) } });
    expect(denied.status).toBe(403);
    expect(await errorCode(denied)).toBe("DENIED");
  });

  it("creates users who log in, owning the namespace of their name, and lists them with their grants", async () => {
    const user = uniqueName("owner");
    await createUser(user, [grant("shared-*", "pull")]);
    const digest = await pushBlob(`${user}/app`, randomBytes(10));
    expect((await pull(`${user}/app`, digest, basic(user, PASSWORD))).status).toBe(200);
    const { users } = (await (await administer("GET", "users")).json()) as { users: { name: string; admin: boolean; grants: unknown[] }[] };
    expect(users.find((u) => u.name === user)).toEqual({ name: user, admin: false, grants: [{ pattern: "shared-*", role: "pull" }] });
  });

  it("refuses a taken name (409), a malformed one or a short password (400)", async () => {
    const user = uniqueName("dup");
    await createUser(user);
    expect((await administer("POST", "users", { name: user, password: PASSWORD })).status).toBe(409);
    expect((await administer("POST", "robots", { name: user, scopes: [grant("x", "pull")] })).status).toBe(409);
    expect((await administer("POST", "users", { name: "Not/A/Name", password: PASSWORD })).status).toBe(400);
    expect((await administer("POST", "users", { name: uniqueName("short"), password: "short" })).status).toBe(400);
    expect((await administer("PUT", `users/${user}/grants/BAD!`, { role: "pull" })).status).toBe(400);
  });

  it("refuses a user whose namespace already holds repositories, which they would own (409)", async () => {
    const name = uniqueName("held");
    await pushBlob(`${name}/app`, randomBytes(10));
    const refused = await administer("POST", "users", { name, password: PASSWORD });
    expect(refused.status).toBe(409);
    expect(await errorCode(refused)).toBe("DENIED");
  });

  it("sets passwords, grants and revokes, and deletes users: each takes effect at once", async () => {
    const repo = uniqueRepo(uniqueName("team"));
    const namespace = repo.split("/")[0]!;
    const digest = await pushBlob(repo, randomBytes(10));
    const user = uniqueName("member");
    await createUser(user);
    expect((await pull(repo, digest, basic(user, PASSWORD))).status).toBe(403);
    expect((await administer("PUT", `users/${user}/grants/${namespace}`, { role: "pull" })).status).toBe(204);
    expect((await pull(repo, digest, basic(user, PASSWORD))).status).toBe(200);
    expect((await administer("DELETE", `users/${user}/grants/${namespace}`)).status).toBe(204);
    expect((await pull(repo, digest, basic(user, PASSWORD))).status).toBe(403);
    const newPassword = "another long password";
    expect((await administer("PUT", `users/${user}/password`, { password: newPassword })).status).toBe(204);
    expect((await pull(repo, digest, basic(user, PASSWORD))).status).toBe(401);
    expect((await fetchAuthed("/v2/", { headers: { Authorization: basic(user, newPassword) } })).status).toBe(200);
    expect((await administer("DELETE", `users/${user}`)).status).toBe(204);
    expect((await fetchAuthed("/v2/", { headers: { Authorization: basic(user, newPassword) } })).status).toBe(401);
    expect((await administer("DELETE", `users/${user}`)).status).toBe(404);
  });

  it("creates robot tokens shown once, scoped and revocable, never listing the token", async () => {
    const repo = uniqueRepo(uniqueName("ci"));
    const digest = await pushBlob(repo, randomBytes(10));
    const robot = uniqueName("bot");
    const token = await createRobot(robot, [grant(repo.split("/")[0]!, "pull")]);
    expect(token).toMatch(/^ert_[0-9a-f]{64}$/);
    expect((await pull(repo, digest, basic(robot, token))).status).toBe(200);
    expect((await pull(uniqueRepo(uniqueName("elsewhere")), digest, basic(robot, token))).status).toBe(403);
    const listing = await (await administer("GET", "robots")).text();
    expect(listing).toContain(robot);
    expect(listing).not.toContain(token);
    expect((await administer("DELETE", `robots/${robot}`)).status).toBe(204);
    expect((await pull(repo, digest, basic(robot, token))).status).toBe(401);
    // A revoked robot's name takes a new token; the old one stays dead.
    const renewed = await createRobot(robot, [grant(repo.split("/")[0]!, "pull")]);
    expect((await pull(repo, digest, basic(robot, renewed))).status).toBe(200);
    expect((await pull(repo, digest, basic(robot, token))).status).toBe(401);
  });

  it("refuses a robot token once it has expired", async () => {
    const repo = uniqueRepo(uniqueName("late"));
    const digest = await pushBlob(repo, randomBytes(10));
    const robot = uniqueName("late");
    const token = await createRobot(robot, [grant(repo.split("/")[0]!, "pull")]);
    // As if its days had passed (the API gives a robot at least one).
    await env.DB.prepare("UPDATE robots SET expires_at = ?2 WHERE name = ?1").bind(robot, Date.now() - 1000).run();
    expect((await pull(repo, digest, basic(robot, token))).status).toBe(401);
  });

  it("does not remember a robot's login past the robot's expiry", async () => {
    const repo = uniqueRepo(uniqueName("soon"));
    const digest = await pushBlob(repo, randomBytes(10));
    const robot = uniqueName("soon");
    const token = await createRobot(robot, [grant(repo.split("/")[0]!, "pull")]);
    await env.DB.prepare("UPDATE robots SET expires_at = ?2 WHERE name = ?1").bind(robot, Date.now() + 1500).run();
    expect((await pull(repo, digest, basic(robot, token))).status).toBe(200);
    // Logins are remembered 60 s, but this one only until the robot expires.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect((await pull(repo, digest, basic(robot, token))).status).toBe(401);
  });

  it("marks namespaces public and private: anyone pulls a public one, without credentials", async () => {
    const repo = uniqueRepo(uniqueName("open"));
    const namespace = repo.split("/")[0]!;
    const digest = await pushBlob(repo, randomBytes(10));
    expect((await pull(repo, digest)).status).toBe(401);
    expect((await administer("PUT", `namespaces/${namespace}`, { public: true })).status).toBe(204);
    expect((await pull(repo, digest)).status).toBe(200);
    expect((await pull(repo, digest, "Bearer QQ==")).status).toBe(200);
    expect(((await (await administer("GET", "namespaces/public")).json()) as { namespaces: string[] }).namespaces).toContain(namespace);
    expect((await administer("PUT", `namespaces/${namespace}`, { public: false })).status).toBe(204);
    expect((await pull(repo, digest)).status).toBe(401);
  });
});

describe("the administration API: namespace policies", () => {
  type Quota = number | "none";
  type Settings = {
    immutableTags?: boolean;
    deleteUntaggedAfterDays?: number | "never";
    keepTags?: number | "all";
    keepTagsMatching?: string;
    maxBlobBytes?: Quota;
    maxManifestBytes?: Quota;
    maxStorageBytes?: Quota;
    maxRepositories?: Quota;
  };
  type Listing = { defaults: Required<Settings>; policies: ({ pattern: string; updatedAt: string } & Settings)[] };
  const QUOTA_DEFAULTS = { maxBlobBytes: "none", maxManifestBytes: 4194304, maxStorageBytes: "none", maxRepositories: "none" };
  const DEFAULTS = { immutableTags: false, deleteUntaggedAfterDays: "never", keepTags: "all", keepTagsMatching: "*", ...QUOTA_DEFAULTS };
  const listing = async () => (await (await administer("GET", "policies")).json()) as Listing;

  it("is for administrators only: 401 without credentials, 403 for a user", async () => {
    const user = uniqueName("plain");
    await createUser(user);
    for (const [method, path] of [["GET", "/admin/policies"], ["PUT", "/admin/policies/x"], ["DELETE", "/admin/policies/x"]] as const) {
      expect((await fetchAuthed(path, { method })).status).toBe(401);
      const denied = await fetchAuthed(path, { method, headers: { Authorization: basic(user, PASSWORD), "Content-Type": "application/json" }, body: method === "PUT" ? "{}" : null });
      expect(denied.status).toBe(403);
    }
  });

  it("sets a pattern's policy, lists it with the defaults of the vars, changes it and removes it", async () => {
    const pattern = `${uniqueName("release")}-*`;
    expect((await administer("PUT", `policies/${pattern}`, { immutableTags: true })).status).toBe(204);
    const listed = await listing();
    expect(listed.defaults).toEqual(DEFAULTS);
    expect(listed.policies.find((p) => p.pattern === pattern)).toEqual({ pattern, immutableTags: true, updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });

    expect((await administer("PUT", `policies/${pattern}`, { immutableTags: false })).status).toBe(204);
    expect((await listing()).policies.find((p) => p.pattern === pattern)?.immutableTags).toBe(false);

    expect((await administer("DELETE", `policies/${pattern}`)).status).toBe(204);
    expect((await listing()).policies.find((p) => p.pattern === pattern)).toBeUndefined();
    const again = await administer("DELETE", `policies/${pattern}`);
    expect(again.status).toBe(404);
    expect(await errorCode(again)).toBe("NAME_UNKNOWN");
  });

  it("lists the defaults the vars give", async () => {
    const vars = { IMMUTABLE_TAGS: "on", RETENTION_UNTAGGED_DAYS: "14", RETENTION_KEEP_TAGS: "5", RETENTION_KEEP_TAGS_MATCHING: "v*", MAX_BLOB_BYTES: "5000000", QUOTA_MAX_REPOSITORIES: "10" };
    const response = await fetchWithEnv({ AUTH_MODE: "token", ...vars }, "/admin/policies", { headers: { Authorization: adminAuthorization() } });
    expect(((await response.json()) as Listing).defaults).toEqual({
      immutableTags: true,
      deleteUntaggedAfterDays: 14,
      keepTags: 5,
      keepTagsMatching: "v*",
      ...QUOTA_DEFAULTS,
      maxBlobBytes: 5000000,
      maxRepositories: 10,
    });
  });

  it("sets retention beside immutability, each setting on its own, never and all included", async () => {
    const pattern = uniqueName("retained");
    const policy = async () => (await listing()).policies.find((p) => p.pattern === pattern);
    expect((await administer("PUT", `policies/${pattern}`, { deleteUntaggedAfterDays: 30 })).status).toBe(204);
    expect((await administer("PUT", `policies/${pattern}`, { keepTags: 10, keepTagsMatching: "v[0-9]*" })).status).toBe(204);
    expect((await administer("PUT", `policies/${pattern}`, { immutableTags: true })).status).toBe(204);
    expect(await policy()).toEqual({ pattern, immutableTags: true, deleteUntaggedAfterDays: 30, keepTags: 10, keepTagsMatching: "v[0-9]*", updatedAt: expect.any(String) });
    expect((await administer("PUT", `policies/${pattern}`, { deleteUntaggedAfterDays: "never", keepTags: "all" })).status).toBe(204);
    expect(await policy()).toMatchObject({ deleteUntaggedAfterDays: "never", keepTags: "all", keepTagsMatching: "v[0-9]*" });
  });

  it("sets quotas beside the rest, none included", async () => {
    const pattern = uniqueName("limited");
    const policy = async () => (await listing()).policies.find((p) => p.pattern === pattern);
    expect((await administer("PUT", `policies/${pattern}`, { maxBlobBytes: 5000000, maxManifestBytes: 100000, maxStorageBytes: 1e9, maxRepositories: 3 })).status).toBe(204);
    expect((await administer("PUT", `policies/${pattern}`, { immutableTags: true })).status).toBe(204);
    expect(await policy()).toEqual({ pattern, immutableTags: true, maxBlobBytes: 5000000, maxManifestBytes: 100000, maxStorageBytes: 1e9, maxRepositories: 3, updatedAt: expect.any(String) });
    expect((await administer("PUT", `policies/${pattern}`, { maxBlobBytes: "none", maxRepositories: "none" })).status).toBe(204);
    expect(await policy()).toMatchObject({ maxBlobBytes: "none", maxStorageBytes: 1e9, maxRepositories: "none" });
  });

  it("refuses a malformed pattern, no setting, an unknown setting or a value of the wrong type (400)", async () => {
    const pattern = uniqueName("bad");
    for (const [path, body] of [
      ["policies/BAD!", { immutableTags: true }],
      [`policies/${pattern}`, {}],
      [`policies/${pattern}`, { immutableTags: true, maxBlobSize: 5 }],
      [`policies/${pattern}`, { maxBlobBytes: 0 }],
      [`policies/${pattern}`, { maxStorageBytes: "5MB" }],
      [`policies/${pattern}`, { maxRepositories: 2.5 }],
      [`policies/${pattern}`, { immutableTags: "on" }],
      [`policies/${pattern}`, { deleteUntaggedAfterDays: 0 }],
      [`policies/${pattern}`, { deleteUntaggedAfterDays: 1.5 }],
      [`policies/${pattern}`, { deleteUntaggedAfterDays: "forever" }],
      [`policies/${pattern}`, { keepTags: -1 }],
      [`policies/${pattern}`, { keepTags: "none" }],
      [`policies/${pattern}`, { keepTagsMatching: "v*" }],
      [`policies/${pattern}`, { keepTags: 3, keepTagsMatching: "v/*" }],
      [`policies/${pattern}`, { keepTags: 3, keepTagsMatching: "x".repeat(51) }],
    ] as const) {
      const refused = await administer("PUT", path, body);
      expect(refused.status).toBe(400);
      expect(await errorCode(refused)).toBe("UNSUPPORTED");
    }
    expect((await listing()).policies.find((p) => p.pattern === pattern)).toBeUndefined();
  });
});
