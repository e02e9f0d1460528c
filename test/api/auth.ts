import { env } from "cloudflare:test";
import { importJWK, SignJWT, type JWK } from "jose";
import { expect } from "vitest";
import type { Role } from "../../src/auth/scopes";
import type { Grant } from "../../src/storage/access";
import { BASE, fetchWithEnv } from "./client";

/** The registry as deployed: AUTH_MODE=token (the API suites run with auth off). */
export function fetchAuthed(path: string, init?: RequestInit): Promise<Response> {
  return fetchWithEnv({ AUTH_MODE: "token" }, path, init);
}

export const SERVICE = new URL(BASE).host;

export function basic(username: string, password: string): string {
  return `Basic ${btoa(`${username}:${password}`)}`;
}

/** The bootstrap administrator's credentials, from the secrets. */
export function adminAuthorization(): string {
  return basic(env.ADMIN_USERNAME!, env.ADMIN_PASSWORD!);
}

let counter = 0;
/** A login name no other test uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${(counter++).toString(36)}`;
}

/** A password good enough for the administration API. */
export const PASSWORD = "correct horse battery staple";

/** A request to the administration API, as the bootstrap administrator. */
export function administer(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { Authorization: adminAuthorization() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetchAuthed(`/admin/${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
}

export async function createUser(name: string, grants: Grant[] = [], password = PASSWORD): Promise<void> {
  expect((await administer("POST", "users", { name, password })).status).toBe(201);
  for (const { pattern, role } of grants) expect((await administer("PUT", `users/${name}/grants/${pattern}`, { role })).status).toBe(204);
}

/** A robot token with these scopes; returns the token. */
export async function createRobot(name: string, scopes: Grant[]): Promise<string> {
  const response = await administer("POST", "robots", { name, scopes });
  expect(response.status).toBe(201);
  return ((await response.json()) as { token: string }).token;
}

export function grant(pattern: string, role: Role): Grant {
  return { pattern, role };
}

export async function makePublic(namespace: string): Promise<void> {
  expect((await administer("PUT", `namespaces/${namespace}`, { public: true })).status).toBe(204);
}

/** GET /token as a client asks for it; returns the access token. */
export async function tokenFor(authorization: string | undefined, ...scopes: string[]): Promise<string> {
  const query = new URLSearchParams({ service: SERVICE });
  for (const scope of scopes) query.append("scope", scope);
  const response = await fetchAuthed(`/token?${query}`, authorization ? { headers: { Authorization: authorization } } : {});
  expect(response.status).toBe(200);
  return ((await response.json()) as { token: string }).token;
}

/** A token signed with `key` (ours unless given) and claims of the test's choosing: for tokens the registry must refuse. */
export async function forgeToken(claims: { aud?: string; exp?: number; access: unknown[]; sub?: string }, key?: JWK): Promise<string> {
  const jwk = key ?? (JSON.parse(env.TOKEN_KEYS!) as JWK[])[0]!;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ access: claims.access, token_use: "access" })
    .setProtectedHeader({ alg: "ES256" })
    .setIssuer(BASE)
    .setAudience(claims.aud ?? SERVICE)
    .setSubject(claims.sub ?? "")
    .setIssuedAt(now - 3600)
    .setNotBefore(now - 3600)
    .setExpirationTime(claims.exp ?? now + 300)
    .setJti(crypto.randomUUID())
    .sign(await importJWK(jwk, "ES256"));
}

export function bearer(token: string): string {
  return `Bearer ${token}`;
}
