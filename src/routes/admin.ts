import { Hono, type Context } from "hono";
import * as z from "zod";
import type { AppEnv } from "../app-env";
import { callerOf, forgetPublicNamespaces } from "../auth/access";
import { forgetLogins, tokenHash } from "../auth/logins";
import { hashPassword } from "../auth/passwords";
import { NAMESPACE_PATTERN, ROLES } from "../auth/scopes";
import { toHex } from "../oci/digest";
import { RegistryError } from "../oci/errors";
import { parseRepositoryName, TAG_PATTERN } from "../oci/names";
import { policyDefaultsOf } from "../storage/policies";
import { authSettingsOf } from "./http";

/**
 * The administration API that `npm run admin` drives: users, their passwords
 * and grants, robot tokens, public namespaces and namespace policies. JSON in and out, for an
 * administrator only. Changes reach this isolate's remembered logins and
 * public namespaces at once, other isolates within their memory's lifetime.
 */
export const admin = new Hono<AppEnv>();

// A login name owns the namespace of its name, so it follows a namespace's grammar.
const loginName = z.string().regex(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/, "a lowercase name: letters, digits, and . _ - between them").max(64);
const password = z.string().min(12, "at least 12 characters").max(1024);
const pattern = z.string().regex(NAMESPACE_PATTERN, "a namespace pattern: lowercase letters, digits, . _ - and * for any run of them");
const role = z.enum(ROLES);
const scope = z.object({ pattern, role });

const NEW_USER = z.object({ name: loginName, password, admin: z.boolean().default(false) });
const NEW_ROBOT = z.object({ name: loginName, scopes: z.array(scope).min(1), days: z.number().int().min(1).max(3650).default(90) });
// A quota: a positive whole number (bytes, or repositories), or "none" to lift the var's default.
const quota = z.union([z.int().min(1).max(Number.MAX_SAFE_INTEGER), z.literal("none")]).optional();

// The settings a policy sets; those left out stay as they were.
const POLICY_SETTINGS = z
  .strictObject({
    immutableTags: z.boolean().optional(),
    deleteUntaggedAfterDays: z.union([z.int().min(1).max(36_500), z.literal("never")]).optional(),
    keepTags: z.union([z.int().min(1).max(1_000_000), z.literal("all")]).optional(),
    keepTagsMatching: z.string().regex(TAG_PATTERN, "a GLOB over tag names: their characters and * ? [ ] ^, at most 50").optional(),
    maxBlobBytes: quota,
    maxManifestBytes: quota,
    maxStorageBytes: quota,
    maxRepositories: quota,
  })
  .refine((settings) => Object.values(settings).some((value) => value !== undefined), "at least one setting, e.g. immutableTags")
  // A pattern is part of its policy's keep-tags rule: set apart, the count it would go with is unclear.
  .refine((settings) => settings.keepTagsMatching === undefined || settings.keepTags !== undefined, { message: "keepTagsMatching is set together with keepTags", path: ["keepTagsMatching"] });

/** A robot token: a recognisable prefix, then 32 random bytes in hex. */
function newRobotToken(): string {
  return `ert_${toHex(crypto.getRandomValues(new Uint8Array(32)))}`;
}

admin.use("/admin/*", async (c, next) => {
  const caller = await callerOf(c.req.header("Authorization"), authSettingsOf(c));
  const allowed = caller.kind === "anyone" || (caller.kind === "user" && caller.admin);
  if (!allowed) {
    if (caller.kind === "anonymous") throw new RegistryError("UNAUTHORIZED", "administrator credentials required", { headers: { "WWW-Authenticate": 'Basic realm="registry administration"' } });
    throw new RegistryError("DENIED", "only an administrator may do this");
  }
  await next();
  // Whatever changed, this isolate stops remembering what it knew.
  if (c.req.method !== "GET") {
    forgetLogins();
    forgetPublicNamespaces();
  }
});

admin.get("/admin/users", async (c) => c.json({ users: await c.get("storage").access.users() }));

admin.post("/admin/users", async (c) => {
  const user = await bodyOf(c, NEW_USER);
  refuseBootstrapName(c, user.name);
  const created = await c.get("storage").access.createUser(user.name, await hashPassword(user.password), user.admin);
  if (created === "taken") throw taken(user.name);
  if (created === "namespace-in-use") {
    throw new RegistryError("DENIED", `the namespace ${user.name} already holds repositories, which a user of that name would own`, { status: 409 });
  }
  return c.json({ name: user.name, admin: user.admin }, 201);
});

admin.delete("/admin/users/:name", async (c) => {
  if (!(await c.get("storage").access.deleteUser(c.req.param("name")))) throw unknownName(c.req.param("name"));
  return c.body(null, 204);
});

admin.put("/admin/users/:name/password", async (c) => {
  const { password: newPassword } = await bodyOf(c, z.object({ password }));
  if (!(await c.get("storage").access.setPassword(c.req.param("name"), await hashPassword(newPassword)))) throw unknownName(c.req.param("name"));
  return c.body(null, 204);
});

admin.put("/admin/users/:name/grants/:pattern", async (c) => {
  const grant = { pattern: parse(pattern, c.req.param("pattern")), role: (await bodyOf(c, z.object({ role }))).role };
  if (!(await c.get("storage").access.grant(c.req.param("name"), grant))) throw unknownName(c.req.param("name"));
  return c.body(null, 204);
});

admin.delete("/admin/users/:name/grants/:pattern", async (c) => {
  if (!(await c.get("storage").access.revoke(c.req.param("name"), c.req.param("pattern")))) throw unknownName(`${c.req.param("name")}'s grant on ${c.req.param("pattern")}`);
  return c.body(null, 204);
});

admin.get("/admin/robots", async (c) => {
  const robots = await c.get("storage").access.robots();
  return c.json({ robots: robots.map((robot) => ({ ...robot, expiresAt: isoTime(robot.expiresAt), revokedAt: robot.revokedAt && isoTime(robot.revokedAt), createdAt: isoTime(robot.createdAt) })) });
});

/** Creates a robot token: the answer is the only time the token is shown. */
admin.post("/admin/robots", async (c) => {
  const robot = await bodyOf(c, NEW_ROBOT);
  refuseBootstrapName(c, robot.name);
  const token = newRobotToken();
  const expiresAt = Date.now() + robot.days * 24 * 60 * 60 * 1000;
  if ((await c.get("storage").access.createRobot(robot.name, await tokenHash(token), robot.scopes, expiresAt)) === "taken") throw taken(robot.name);
  c.header("Cache-Control", "no-store");
  return c.json({ name: robot.name, token, scopes: robot.scopes, expiresAt: isoTime(expiresAt) }, 201);
});

admin.delete("/admin/robots/:name", async (c) => {
  if (!(await c.get("storage").access.revokeRobot(c.req.param("name")))) throw unknownName(c.req.param("name"));
  return c.body(null, 204);
});

admin.get("/admin/namespaces/public", async (c) => c.json({ namespaces: await c.get("storage").access.publicNamespaces() }));

admin.put("/admin/namespaces/:name", async (c) => {
  const namespace = parse(loginName, c.req.param("name"));
  const { public: isPublic } = await bodyOf(c, z.object({ public: z.boolean() }));
  await c.get("storage").access.setPublic(namespace, isPublic);
  return c.body(null, 204);
});

/** The policies, and the defaults from the vars that apply where none of them sets a setting. */
admin.get("/admin/policies", async (c) => {
  const policies = await c.get("storage").policies.list();
  return c.json({ defaults: policyDefaultsOf(c.get("config")), policies: policies.map((policy) => ({ ...policy, updatedAt: isoTime(policy.updatedAt) })) });
});

admin.put("/admin/policies/:pattern", async (c) => {
  const policyPattern = parse(pattern, c.req.param("pattern"));
  await c.get("storage").policies.set(policyPattern, await bodyOf(c, POLICY_SETTINGS));
  return c.body(null, 204);
});

admin.delete("/admin/policies/:pattern", async (c) => {
  if (!(await c.get("storage").policies.remove(c.req.param("pattern")))) throw unknownName(`policy on ${c.req.param("pattern")}`);
  return c.body(null, 204);
});

/** What every namespace holds: bytes (blobs linked, once per repository, and manifests) and repositories. */
admin.get("/admin/usage", async (c) => c.json({ namespaces: await c.get("storage").quotas.namespaces() }));

/** One namespace's usage, the quotas it is held to (null: no limit), and what each of its repositories holds. */
admin.get("/admin/usage/:namespace", async (c) => {
  const namespace = parse(loginName, c.req.param("namespace"));
  const { quotas } = c.get("storage");
  const [[usage], repositories, quota] = await Promise.all([
    quotas.namespaces(namespace),
    quotas.repositories(namespace),
    quotas.of(parseRepositoryName(namespace), policyDefaultsOf(c.get("config"))),
  ]);
  const { maxBlobBytes, maxManifestBytes, maxStorageBytes, maxRepositories } = quota;
  return c.json({
    namespace,
    bytes: usage?.bytes ?? 0,
    repositories: usage?.repositories ?? 0,
    limits: { maxBlobBytes, maxManifestBytes, maxStorageBytes, maxRepositories },
    repositoryUsage: repositories,
  });
});

async function bodyOf<T>(c: Context<AppEnv>, schema: z.ZodType<T>): Promise<T> {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    throw new RegistryError("UNSUPPORTED", "the body must be JSON");
  }
  return parse(schema, json);
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new RegistryError("UNSUPPORTED", { issues: result.error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message })) });
  return result.data;
}

/** The bootstrap administrator's name is the secret's, not a user's or a robot's. */
function refuseBootstrapName(c: Context<AppEnv>, name: string): void {
  if (name === c.env.ADMIN_USERNAME) throw taken(name);
}

function isoTime(milliseconds: number): string {
  return new Date(milliseconds).toISOString();
}

function taken(name: string): RegistryError {
  return new RegistryError("DENIED", `the name ${name} is taken by a user or a robot`, { status: 409 });
}

function unknownName(what: string): RegistryError {
  return new RegistryError("NAME_UNKNOWN", `no ${what.slice(0, 200)}`);
}
