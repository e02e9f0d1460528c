import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { attempt, MEDIA_TYPES, registryFetch, sha256 } from "./clients";
import { freePort } from "./registry-server";

/**
 * `npm run admin` against the registry started as `AUTH_MODE=token npm start`. The commands run
 * as a developer runs them against a local registry on another port: `--url` names the port, and
 * the login is the administrator of the repository's .dev.vars, which that registry started with.
 * What each command did is checked through the registry's own API, as clients call it.
 */
const registry = inject("securedRegistry");
/** The same administrator, for pushing what the tests pull and for the --remote form. */
const admin = inject("admin");

const SCRIPT = fileURLToPath(new URL("../../scripts/admin.mjs", import.meta.url));
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PASSWORD = "correct horse battery staple";

interface Login {
  username: string;
  password: string;
}

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, whatever its exit status, with `env` added to this process's environment. */
function runCommand(command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: ROOT, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return reject(error);
      resolve({ status: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

/** What `npm run admin -- ...args` runs: node scripts/admin.mjs. */
function runScript(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runCommand(process.execPath, [SCRIPT, ...args], env);
}

/** A command against the registry under test, named as a local one on another port. */
function runAdmin(...args: string[]): Promise<Run> {
  return runScript(["--url", `http://${registry}`, ...args]);
}

/** The output of a command that must succeed. */
async function administer(...args: string[]): Promise<string> {
  const run = await runAdmin(...args);
  expect(run.status, run.stderr).toBe(0);
  return run.stdout;
}

let counter = 0;
/** A login name or namespace no other test, and no other run against the same registry, uses. */
function unique(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${(counter++).toString(36)}`;
}

function basic({ username, password }: Login): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

/** GET /token as docker asks for it: at the realm the registry's challenge names, with Basic credentials unless anonymous. */
async function requestToken(login: Login | null, scope?: string): Promise<Response> {
  const challenge = (await registryFetch(registry, "/v2/")).headers.get("WWW-Authenticate") ?? "";
  const parameter = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(challenge)?.[1] ?? "";
  const url = new URL(parameter("realm"));
  url.searchParams.set("service", parameter("service"));
  if (scope) url.searchParams.set("scope", scope);
  return fetch(url, login ? { headers: { Authorization: basic(login) } } : {});
}

/** docker login: 200 when the registry takes the credentials, 401 when not. */
async function loginStatus(login: Login): Promise<number> {
  return (await requestToken(login)).status;
}

/** A request to the registry with the token a login gets for `scope`; the token service's status if it refuses one. */
async function withToken(login: Login | null, scope: string, path: string, init: RequestInit = {}): Promise<number> {
  const answer = await requestToken(login, scope);
  if (answer.status !== 200) return answer.status;
  const { token } = (await answer.json()) as { token: string };
  return (await registryFetch(registry, path, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } })).status;
}

/** Pulls a blob as docker does (a token for pull, then the blob): 200, or the status refusing it. */
function pullStatus(login: Login | null, repo: string, digest: string): Promise<number> {
  return withToken(login, `repository:${repo}:pull`, `/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
}

/** Pushes a blob in one request (POST ?digest=), with a token for pull and push: 201, or the status refusing it. */
function pushStatus(login: Login | null, repo: string, bytes: Uint8Array): Promise<number> {
  return withToken(login, `repository:${repo}:pull,push`, `/v2/${repo}/blobs/uploads/?digest=${sha256(bytes)}`, { method: "POST", body: bytes });
}

/** A repository holding a blob, pushed by the administrator; returns its name and the blob's digest. */
async function repositoryIn(namespace: string): Promise<{ repo: string; digest: string }> {
  const repo = `${namespace}/app`;
  const bytes = randomBytes(64);
  expect(await pushStatus(admin, repo, bytes)).toBe(201);
  return { repo, digest: sha256(bytes) };
}

async function newUser(...flags: string[]): Promise<Login> {
  const username = unique("user");
  await administer("user", "add", username, "--password", PASSWORD, ...flags);
  return { username, password: PASSWORD };
}

describe("user add, password, remove and list", () => {
  it("user add creates a user who logs in, with the password given or with one generated and shown once", async () => {
    const chosen = await newUser();
    expect(await loginStatus(chosen)).toBe(200);

    const username = unique("user");
    const output = await administer("user", "add", username);
    const password = /^Password \(shown only once\): (\S+)$/m.exec(output)?.[1];
    expect(password).toBeDefined();
    expect(await loginStatus({ username, password: password! })).toBe(200);
  });

  it("user add --admin makes an administrator, who pulls from any namespace; a plain user does not", async () => {
    const { repo, digest } = await repositoryIn(unique("team"));
    expect(await pullStatus(await newUser("--admin"), repo, digest)).toBe(200);
    expect(await pullStatus(await newUser(), repo, digest)).toBe(401);
  });

  it("user list shows each user with their grants, and --json the API's answer", async () => {
    const member = await newUser();
    await administer("grant", member.username, "shared-*", "pull");
    const chief = await newUser("--admin");
    const lines = (await administer("user", "list")).split("\n");
    expect(lines.find((line) => line.startsWith(`${member.username} `))).toMatch(/\bshared-\*=pull$/);
    expect(lines.find((line) => line.startsWith(`${chief.username} `))).toMatch(/\badministrator$/);
    const { users } = JSON.parse(await administer("user", "list", "--json")) as { users: unknown[] };
    expect(users).toContainEqual({ name: member.username, admin: false, grants: [{ pattern: "shared-*", role: "pull" }] });
  });

  it("user password sets a new password: it logs in, the old one no longer does", async () => {
    const user = await newUser();
    const output = await administer("user", "password", user.username);
    const password = /^Password \(shown only once\): (\S+)$/m.exec(output)?.[1];
    expect(await loginStatus({ username: user.username, password: password! })).toBe(200);
    expect(await loginStatus(user)).toBe(401);
  });

  it("user remove deletes the user, who can no longer log in", async () => {
    const user = await newUser();
    expect(await loginStatus(user)).toBe(200);
    expect(await administer("user", "remove", user.username)).toContain(`Removed user ${user.username}`);
    expect(await loginStatus(user)).toBe(401);
  });

  it("a taken name or a short password exits non-zero with the API's message", async () => {
    const user = await newUser();
    const taken = await runAdmin("user", "add", user.username, "--password", PASSWORD);
    expect(taken.status).toBe(1);
    expect(taken.stderr).toContain(`409 DENIED: the name ${user.username} is taken by a user or a robot`);
    const short = await runAdmin("user", "add", unique("user"), "--password", "short");
    expect(short.status).toBe(1);
    expect(short.stderr).toContain("password: at least 12 characters");
  });
});

describe("grant and revoke", () => {
  it("grant lets a user pull from the namespaces a pattern matches, and no more; revoke stops it", async () => {
    const prefix = unique("group");
    const { repo, digest } = await repositoryIn(`${prefix}-one`);
    const user = await newUser();
    expect(await pullStatus(user, repo, digest)).toBe(401);

    expect(await administer("grant", user.username, `${prefix}-*`, "pull")).toContain(`${user.username} now has pull on ${prefix}-*`);
    expect(await pullStatus(user, repo, digest)).toBe(200);
    expect(await pushStatus(user, repo, randomBytes(8))).toBe(401);

    await administer("revoke", user.username, `${prefix}-*`);
    expect(await pullStatus(user, repo, digest)).toBe(401);
  });

  it("a role the API does not know, or a grant that is not there, exits non-zero with the API's message", async () => {
    const user = await newUser();
    const role = await runAdmin("grant", user.username, "team", "owner");
    expect(role.status).toBe(1);
    expect(role.stderr).toMatch(/^ {2}role: .*"pull"\|"push"\|"delete"\|"admin"/m);
    const revoke = await runAdmin("revoke", user.username, "team");
    expect(revoke.status).toBe(1);
    expect(revoke.stderr).toContain("404 NAME_UNKNOWN");
  });
});

describe("robot add, revoke and list", () => {
  it("robot add prints its token once and how to log in; the token works as a password within its scope until robot revoke", async () => {
    const namespace = unique("ci");
    const { repo, digest } = await repositoryIn(namespace);
    const elsewhere = await repositoryIn(unique("other"));
    const name = unique("robot");

    const output = await administer("robot", "add", name, "--scope", `${namespace}=push`, "--days", "7");
    expect(output).toContain("shown only once");
    expect(output).toContain(`docker login ${registry} -u ${name} --password-stdin`);
    const token = /\bert_[0-9a-f]{64}\b/.exec(output)?.[0];
    const robot = { username: name, password: token! };
    expect(await loginStatus(robot)).toBe(200);
    expect(await pullStatus(robot, repo, digest)).toBe(200);
    expect(await pushStatus(robot, repo, randomBytes(8))).toBe(201);
    expect(await pullStatus(robot, elsewhere.repo, elsewhere.digest)).toBe(401);

    const listed = await administer("robot", "list");
    expect(listed).toMatch(new RegExp(`^${name} +${namespace}=push +until \\d{4}-\\d{2}-\\d{2}$`, "m"));
    expect(listed).not.toContain(token);
    const { robots } = JSON.parse(await administer("robot", "list", "--json")) as { robots: { name: string; expiresAt: string }[] };
    const days = (Date.parse(robots.find((r) => r.name === name)!.expiresAt) - Date.now()) / (24 * 60 * 60 * 1000);
    expect(days).toBeCloseTo(7, 2);

    await administer("robot", "revoke", name);
    expect(await loginStatus(robot)).toBe(401);
    expect(await administer("robot", "list")).toMatch(new RegExp(`^${name} .* revoked `, "m"));
  });

  it("robot add without a scope, or with one that is not <pattern>=<role>, is refused before any request", async () => {
    for (const args of [[], ["--scope", "team"]]) {
      const refused = await runAdmin("robot", "add", unique("robot"), ...args);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain("<pattern>=<role>");
    }
  });
});

describe("namespace public, private and list", () => {
  it("namespace public lets anyone pull without credentials, and nothing more; namespace private stops it", async () => {
    const namespace = unique("open");
    const { repo, digest } = await repositoryIn(namespace);
    const head = (authorization?: string) =>
      registryFetch(registry, `/v2/${repo}/blobs/${digest}`, { method: "HEAD", headers: authorization ? { Authorization: authorization } : {} });
    expect((await head()).status).toBe(401);

    expect(await administer("namespace", "public", namespace)).toContain(`${namespace} is public`);
    expect((await head()).status).toBe(200);
    // Homebrew's fixed bearer, and docker's anonymous token.
    expect((await head("Bearer QQ==")).status).toBe(200);
    expect(await pullStatus(null, repo, digest)).toBe(200);
    expect(await pushStatus(null, repo, randomBytes(8))).toBe(401);
    expect((await administer("namespace", "list")).split("\n")).toContain(namespace);

    await administer("namespace", "private", namespace);
    expect((await head()).status).toBe(401);
    expect(await pullStatus(null, repo, digest)).toBe(401);
    expect((JSON.parse(await administer("namespace", "list", "--json")) as { namespaces: string[] }).namespaces).not.toContain(namespace);
  });
});

/** Two image manifests (an annotation apart) over a config the administrator pushes into `repo`. */
async function twoManifests(repo: string): Promise<[Uint8Array, Uint8Array]> {
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  expect(await pushStatus(admin, repo, config)).toBe(201);
  const manifest = (n: number) =>
    new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
        layers: [],
        annotations: { n: String(n) },
      }),
    );
  return [manifest(1), manifest(2)];
}

/** Pushes a manifest under a tag as the administrator: 201, or the status refusing it. */
function tagStatus(repo: string, tag: string, manifest: Uint8Array): Promise<number> {
  const init = { method: "PUT", headers: { "Content-Type": MEDIA_TYPES.ociManifest }, body: manifest };
  return withToken(admin, `repository:${repo}:pull,push`, `/v2/${repo}/manifests/${tag}`, init);
}

describe("policy set, remove and list", () => {
  it("policy set --immutable-tags on holds the tags of the namespaces its pattern matches, until policy remove", async () => {
    const prefix = unique("frozen");
    const pattern = `${prefix}-*`;
    const repo = `${prefix}-one/app`;
    const [first, second] = await twoManifests(repo);

    expect(await administer("policy", "set", pattern, "--immutable-tags", "on")).toContain(`Policy on ${pattern}: immutable-tags=on.`);
    expect(await tagStatus(repo, "1.0", first)).toBe(201);
    expect(await tagStatus(repo, "1.0", second)).toBe(403);
    expect(await tagStatus(repo, "1.0", first)).toBe(201);
    expect(await withToken(admin, `repository:${repo}:delete`, `/v2/${repo}/manifests/1.0`, { method: "DELETE" })).toBe(403);

    const lines = (await administer("policy", "list")).trimEnd().split("\n");
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${pattern.replace("*", "\\*")} +immutable-tags=on$`)));
    expect(lines.at(-1)).toBe(
      "Defaults where no policy sets it: immutable-tags=off, delete-untagged-after-days=never, keep-tags=all, keep-tags-matching=*, " +
        "max-blob-size=none, max-manifest-size=4 MiB, max-storage=none, max-repositories=none",
    );
    const listed = JSON.parse(await administer("policy", "list", "--json")) as { policies: { pattern: string }[] };
    expect(listed.policies).toContainEqual({ pattern, immutableTags: true, updatedAt: expect.any(String) });

    expect(await administer("policy", "remove", pattern)).toContain(`Removed the policy on ${pattern}.`);
    expect(await tagStatus(repo, "1.0", second)).toBe(201);
    expect(await administer("policy", "list")).not.toContain(pattern);
  });

  it("policy set --immutable-tags off exempts a namespace only where no other matching policy says on", async () => {
    const prefix = unique("thawed");
    await administer("policy", "set", `${prefix}-*`, "--immutable-tags", "on");
    await administer("policy", "set", `${prefix}-scratch`, "--immutable-tags", "off");
    const repo = `${prefix}-scratch/app`;
    const [first, second] = await twoManifests(repo);
    expect(await tagStatus(repo, "1.0", first)).toBe(201);
    expect(await tagStatus(repo, "1.0", second)).toBe(403);
    await administer("policy", "remove", `${prefix}-*`);
    expect(await tagStatus(repo, "1.0", second)).toBe(201);
  });

  it("a client pushing over a held tag is told which tag, where it points and which policy holds it", async () => {
    const namespace = unique("held");
    const repo = `${namespace}/app`;
    const [first, second] = await twoManifests(repo);
    expect(await tagStatus(repo, "1.0", first)).toBe(201);
    expect(await tagStatus(repo, "next", second)).toBe(201);
    await administer("policy", "set", namespace, "--immutable-tags", "on");

    const creds = `${admin.username}:${admin.password}`;
    const copy = await attempt("skopeo", ["copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds, "--dest-creds", creds, `docker://${registry}/${repo}:next`, `docker://${registry}/${repo}:1.0`]);
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toContain(`tag 1.0 is immutable (namespace policy ${namespace}): it points at ${sha256(first)}`);
  });

  it("policy set --delete-untagged-after-days and --keep-tags set retention, which policy list shows; never and all lift them", async () => {
    const pattern = `${unique("ci")}-*`;
    const set = await administer("policy", "set", pattern, "--delete-untagged-after-days", "14", "--keep-tags", "20", "--keep-tags-matching", "pr-*");
    expect(set).toContain(`Policy on ${pattern}: delete-untagged-after-days=14, keep-tags=20, keep-tags-matching=pr-*.`);
    const listed = JSON.parse(await administer("policy", "list", "--json")) as { policies: { pattern: string }[] };
    expect(listed.policies).toContainEqual({ pattern, deleteUntaggedAfterDays: 14, keepTags: 20, keepTagsMatching: "pr-*", updatedAt: expect.any(String) });
    await administer("policy", "set", pattern, "--delete-untagged-after-days", "never", "--keep-tags", "all");
    const lines = (await administer("policy", "list")).split("\n");
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${pattern.replace("*", "\\*")} +delete-untagged-after-days=never, keep-tags=all, keep-tags-matching=pr-\\*$`)));
  });

  it("policy set --max-blob-size 5MB holds against a client copying a larger layer, which prints the limit; usage shows what the namespace holds", async () => {
    const namespace = unique("small");
    expect(await administer("policy", "set", namespace, "--max-blob-size", "5MB", "--max-storage", "1GiB")).toContain(`Policy on ${namespace}: max-blob-size=5 MB, max-storage=1 GiB.`);
    // An image with a 6 MB layer, where no quota applies.
    const source = `${unique("large")}/app`;
    const [manifest] = await twoManifests(source);
    const layer = randomBytes(6_000_000);
    expect(await pushStatus(admin, source, layer)).toBe(201);
    const withLayer = JSON.parse(new TextDecoder().decode(manifest)) as { layers: unknown[] };
    withLayer.layers = [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }];
    expect(await tagStatus(source, "1.0", new TextEncoder().encode(JSON.stringify(withLayer)))).toBe(201);

    expect(await pushStatus(admin, `${namespace}/app`, randomBytes(64))).toBe(201);

    const creds = `${admin.username}:${admin.password}`;
    const copy = await attempt("skopeo", ["copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds, "--dest-creds", creds, `docker://${registry}/${source}:1.0`, `docker://${registry}/${namespace}/app:1.0`]);
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toContain(`blob exceeds the limit of 5 MB for namespace ${namespace} (policy ${namespace})`);
    const usage = await administer("usage", namespace);
    expect(usage).toMatch(new RegExp(`^${namespace}: \\d+ bytes of 1 GiB \\(policy ${namespace}\\), 1 repositories of no limit$`, "m"));
    expect(usage).toContain("Largest blob: 5 MB");
    expect(await administer("usage")).toMatch(new RegExp(`^${namespace} +\\d+ bytes +1 repositories$`, "m"));
  });

  it("policy set without a setting, or with a value it cannot take, is refused before any request; removing no policy is the API's 404", async () => {
    for (const args of [[], ["--immutable-tags", "yes"], ["--delete-untagged-after-days", "0"], ["--keep-tags", "some"], ["--keep-tags-matching", "v*"], ["--max-blob-size", "5XB"], ["--max-repositories", "0"]]) {
      const refused = await runAdmin("policy", "set", unique("team"), ...args);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toMatch(/--immutable-tags|--delete-untagged-after-days|--keep-tags|--max-blob-size|--max-repositories/);
    }
    const missing = await runAdmin("policy", "remove", unique("team"));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("404 NAME_UNKNOWN");
  });
});

describe("the registry administered, and the login sent", () => {
  it("--remote takes the administrator's login from ADMIN_USERNAME and ADMIN_PASSWORD in the environment", async () => {
    const namespace = unique("remote");
    const run = await runScript(["--remote", `http://${registry}`, "namespace", "public", namespace], {
      ADMIN_USERNAME: admin.username,
      ADMIN_PASSWORD: admin.password,
    });
    expect(run.status, run.stderr).toBe(0);
    expect((await administer("namespace", "list")).split("\n")).toContain(namespace);
  });

  it("--remote without them in the environment is refused, saying where they come from", async () => {
    const run = await runScript(["--remote", `http://${registry}`, "user", "list"], { ADMIN_USERNAME: "", ADMIN_PASSWORD: "" });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("set ADMIN_USERNAME and ADMIN_PASSWORD");
  });

  it("a refused login is told with the user and where the login came from, never the password", async () => {
    const wrong = "not the administrator's password";
    const run = await runScript(["--remote", `http://${registry}`, "user", "list"], { ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: wrong });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("401 UNAUTHORIZED");
    expect(run.stderr).toContain(`user "${admin.username}" from the environment (ADMIN_USERNAME, ADMIN_PASSWORD)`);
    expect(run.stderr).not.toContain(wrong);
  });

  it("when nothing answers at the local address, it says the local registry must be running", async () => {
    const run = await runScript(["--url", `http://127.0.0.1:${await freePort()}`, "user", "list"]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("The local registry must be running");
    expect(run.stderr).toContain("npm start");
  });

  it("npm run admin -- help lists the commands of every group and the options that pick the registry", async () => {
    const help = await runCommand("npm", ["run", "admin", "--", "help"]);
    expect(help.status).toBe(0);
    for (const usage of ["user add <name>", "grant <user> <pattern>", "robot add <name> --scope", "namespace public <namespace>", "policy set <pattern> --immutable-tags", "keys", "--url URL", "--remote URL"]) {
      expect(help.stdout).toContain(usage);
    }
  });
});

describe("keys", () => {
  it("prints a TOKEN_KEYS value: a new private P-256 key, before the keys of TOKEN_KEYS in the environment", async () => {
    const fresh = JSON.parse((await runScript(["keys"], { TOKEN_KEYS: "" })).stdout) as Record<string, string>[];
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).toMatchObject({ kty: "EC", crv: "P-256", d: expect.any(String), x: expect.any(String), y: expect.any(String) });

    const rotated = JSON.parse((await runScript(["keys"], { TOKEN_KEYS: JSON.stringify(fresh) })).stdout) as Record<string, string>[];
    expect(rotated).toHaveLength(2);
    expect(rotated[0]!.d).not.toBe(fresh[0]!.d);
    expect(rotated[1]).toEqual(fresh[0]);
  });
});
