import { env } from "cloudflare:test";
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from "jose";
import { describe, expect, it, vi } from "vitest";
import { adminAuthorization, administer, basic, bearer, createUser, fetchAuthed, grant, makePublic, PASSWORD, SERVICE, tokenFor, uniqueName } from "./auth";
import { BASE, errorCode, fetchWithEnv, pushBlob, randomBytes, uniqueRepo } from "./client";

interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

function tokenRequest(query: Record<string, string | string[]>, authorization?: string, client = "192.0.2.1"): Promise<Response> {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) for (const v of [value].flat()) params.append(key, v);
  const headers: Record<string, string> = { "CF-Connecting-IP": client };
  if (authorization) headers.Authorization = authorization;
  return fetchAuthed(`/token?${params}`, { headers });
}

function tokenForm(form: Record<string, string>, client = "192.0.2.2"): Promise<Response> {
  return fetchAuthed("/token", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded", "CF-Connecting-IP": client }, body: new URLSearchParams(form) });
}

const accessOf = (token: string) => decodeJwt(token).access as { type: string; name: string; actions: string[] }[];

describe("GET /token", () => {
  it("grants what was asked as far as the caller is allowed, scopes repeated or space-joined", async () => {
    const [mine, theirs] = [uniqueRepo(uniqueName("tka")), uniqueRepo(uniqueName("tkb"))];
    const user = uniqueName("tk");
    await createUser(user, [grant(mine.split("/")[0]!, "pull")]);
    const response = await tokenRequest(
      { service: SERVICE, scope: [`repository:${mine}:pull,push`, `repository:${theirs}:pull repository:${mine}:delete`] },
      basic(user, PASSWORD),
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as TokenResponse;
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBeGreaterThan(0);
    expect(new Date(body.issued_at).getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    expect(accessOf(body.token)).toEqual([
      { type: "repository", name: mine, actions: ["pull"] },
      { type: "repository", name: theirs, actions: [] },
      { type: "repository", name: mine, actions: [] },
    ]);
  });

  it("signs a JWT with kid, iss, aud = the service, sub, exp, nbf, jti and access", async () => {
    const repo = uniqueRepo(uniqueName("claims"));
    const token = await tokenFor(adminAuthorization(), `repository:${repo}:pull,push`);
    const header = decodeProtectedHeader(token);
    expect(header.alg).toBe("ES256");
    expect(header.kid).toBeTypeOf("string");
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: BASE, aud: SERVICE, sub: env.ADMIN_USERNAME, access: [{ type: "repository", name: repo, actions: ["pull", "push"] }] });
    expect(claims.exp! - claims.nbf!).toBeGreaterThan(0);
    expect(claims.jti).toBeTypeOf("string");
  });

  it("gives anonymous callers pull on public namespaces and nothing on private ones", async () => {
    const [open, closed] = [uniqueRepo(uniqueName("pub")), uniqueRepo(uniqueName("priv"))];
    await makePublic(open.split("/")[0]!);
    const token = await tokenFor(undefined, `repository:${open}:pull,push`, `repository:${closed}:pull`);
    expect(decodeJwt(token).sub).toBe("");
    expect(accessOf(token)).toEqual([
      { type: "repository", name: open, actions: ["pull"] },
      { type: "repository", name: closed, actions: [] },
    ]);
  });

  it("grants a cross-repository mount's second scope: pull on the source", async () => {
    const [target, source] = [uniqueRepo(uniqueName("mta")), uniqueRepo(uniqueName("mtb"))];
    const user = uniqueName("mt");
    await createUser(user, [grant(target.split("/")[0]!, "push"), grant(source.split("/")[0]!, "pull")]);
    const digest = await pushBlob(source, randomBytes(64));
    const token = await tokenFor(basic(user, PASSWORD), `repository:${target}:pull,push`, `repository:${source}:pull`);
    const mounted = await fetchAuthed(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${source}`, { method: "POST", headers: { Authorization: bearer(token) } });
    expect(mounted.status).toBe(201);
  });

  it("answers wrong credentials with 401 and no secret in the body or the log", async () => {
    const user = uniqueName("quiet");
    await createUser(user, [], "the-real-password-123");
    const logged = vi.spyOn(console, "error");
    const response = await tokenRequest({ service: SERVICE }, basic(user, "a-guessed-password"), "192.0.2.77");
    expect(response.status).toBe(401);
    expect(await errorCode(response.clone())).toBe("UNAUTHORIZED");
    const text = await response.text();
    for (const secret of ["a-guessed-password", "the-real-password", env.ADMIN_PASSWORD!, env.TOKEN_KEYS!]) {
      expect(text).not.toContain(secret);
      expect(JSON.stringify(logged.mock.calls)).not.toContain(secret);
    }
    logged.mockRestore();
  });

  it("refuses a token for another service", async () => {
    const response = await tokenRequest({ service: "elsewhere.test", scope: "repository:a/b:pull" });
    expect(response.status).toBe(400);
  });

  it("gives a refresh token for offline_token=true, which is no access token", async () => {
    const body = (await (await tokenRequest({ service: SERVICE, offline_token: "true" }, adminAuthorization())).json()) as TokenResponse;
    expect(body.refresh_token).toBeTypeOf("string");
    expect((await fetchAuthed("/v2/", { headers: { Authorization: bearer(body.refresh_token!) } })).status).toBe(401);
  });
});

describe("POST /token (OAuth2 form, as containerd sends it)", () => {
  it("grants with grant_type=password, and a refresh token for access_type=offline that trades for more tokens", async () => {
    const repo = uniqueRepo(uniqueName("form"));
    const user = uniqueName("form");
    await createUser(user, [grant(repo.split("/")[0]!, "push")]);
    const first = await tokenForm({ grant_type: "password", username: user, password: PASSWORD, service: SERVICE, client_id: "containerd", scope: `repository:${repo}:pull,push`, access_type: "offline" });
    expect(first.status).toBe(200);
    const { access_token, refresh_token } = (await first.json()) as TokenResponse;
    expect(accessOf(access_token)).toEqual([{ type: "repository", name: repo, actions: ["pull", "push"] }]);
    const again = await tokenForm({ grant_type: "refresh_token", refresh_token: refresh_token!, service: SERVICE, client_id: "containerd", scope: `repository:${repo}:pull` });
    expect(again.status).toBe(200);
    expect(accessOf(((await again.json()) as TokenResponse).access_token)).toEqual([{ type: "repository", name: repo, actions: ["pull"] }]);
  });

  it("refuses a refresh token once its user has a new password", async () => {
    const user = uniqueName("moved");
    await createUser(user);
    const first = await tokenForm({ grant_type: "password", username: user, password: PASSWORD, service: SERVICE, access_type: "offline" });
    const { refresh_token } = (await first.json()) as TokenResponse;
    expect((await administer("PUT", `users/${user}/password`, { password: "a brand new password" })).status).toBe(204);
    expect((await tokenForm({ grant_type: "refresh_token", refresh_token: refresh_token!, service: SERVICE })).status).toBe(401);
  });

  it("refuses a wrong password with 401, and a refresh token that is no refresh token", async () => {
    const user = uniqueName("formbad");
    await createUser(user);
    expect((await tokenForm({ grant_type: "password", username: user, password: "nope", service: SERVICE }, "192.0.2.9")).status).toBe(401);
    const access = await tokenFor(basic(user, PASSWORD));
    expect((await tokenForm({ grant_type: "refresh_token", refresh_token: access, service: SERVICE })).status).toBe(401);
  });
});

describe("token keys", () => {
  it("verify a token signed by the previous key once a new one signs, and not after the old key is dropped", async () => {
    const repo = uniqueRepo(uniqueName("rot"));
    const oldKeys = env.TOKEN_KEYS!;
    const oldToken = await tokenFor(adminAuthorization(), `repository:${repo}:pull`);
    const newKey: JWK = await exportJWK((await generateKeyPair("ES256", { extractable: true })).privateKey);
    const rotated = JSON.stringify([newKey, ...(JSON.parse(oldKeys) as JWK[])]);
    const asRotated = (token: string) => fetchWithEnv({ AUTH_MODE: "token", TOKEN_KEYS: rotated }, `/v2/${repo}/tags/list`, { headers: { Authorization: bearer(token) } });
    expect((await asRotated(oldToken)).status).not.toBe(401);
    const newToken = ((await (await fetchWithEnv({ AUTH_MODE: "token", TOKEN_KEYS: rotated }, `/token?service=${SERVICE}&scope=repository:${repo}:pull`, { headers: { Authorization: adminAuthorization() } })).json()) as TokenResponse).token;
    expect(decodeProtectedHeader(newToken).kid).not.toBe(decodeProtectedHeader(oldToken).kid);
    expect((await asRotated(newToken)).status).not.toBe(401);
    const onlyNew = JSON.stringify([newKey]);
    const withoutOld = await fetchWithEnv({ AUTH_MODE: "token", TOKEN_KEYS: onlyNew }, `/v2/${repo}/tags/list`, { headers: { Authorization: bearer(oldToken) } });
    expect(withoutOld.status).toBe(401);
  });
});

describe("failed logins", () => {
  it("are slowed down: past ten from one client, 429 with Retry-After, even for the right password", async () => {
    const user = uniqueName("guess");
    await createUser(user, [], "the-right-password");
    const client = "192.0.2.200";
    for (let i = 0; i < 10; i++) expect((await tokenRequest({ service: SERVICE }, basic(user, `guess-${i}`), client)).status).toBe(401);
    const slowed = await tokenRequest({ service: SERVICE }, basic(user, "the-right-password"), client);
    expect(slowed.status).toBe(429);
    expect(await errorCode(slowed.clone())).toBe("TOOMANYREQUESTS");
    expect(Number(slowed.headers.get("Retry-After"))).toBeGreaterThan(0);
    // Other clients are not slowed down.
    expect((await tokenRequest({ service: SERVICE }, basic(user, "the-right-password"), "192.0.2.201")).status).toBe(200);
  });
});

describe("Basic credentials on /v2", () => {
  it("are accepted as curl and simple tools send them, and remembered for a while", async () => {
    const repo = uniqueRepo(uniqueName("curl"));
    const user = uniqueName("curl");
    await createUser(user, [grant(repo.split("/")[0]!, "push")]);
    const digest = await pushBlob(repo, randomBytes(10));
    for (let i = 0; i < 3; i++) {
      expect((await fetchAuthed(`/v2/${repo}/blobs/${digest}`, { method: "HEAD", headers: { Authorization: basic(user, PASSWORD) } })).status).toBe(200);
    }
  });
});
