import { env } from "cloudflare:test";
import { importJWK, SignJWT, type JWK } from "jose";
import { expect } from "vitest";
import { hashPassword } from "../../src/auth/passwords";
import type { Role } from "../../src/auth/scopes";
import { tokenHash } from "../../src/auth/logins";
import { AccessStore, type Grant } from "../../src/storage/access";
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

const store = () => new AccessStore(env.DB);

export async function createUser(name: string, password: string, grants: Grant[] = [], admin = false): Promise<void> {
  expect(await store().createUser(name, await hashPassword(password), admin)).toBe("created");
  for (const grant of grants) expect(await store().grant(name, grant)).toBe(true);
}

/** A robot token with these scopes, expiring at `expiresAt`; returns the token. */
export async function createRobot(name: string, scopes: Grant[], expiresAt = Date.now() + 86_400_000): Promise<string> {
  const token = `ert_${crypto.randomUUID().replaceAll("-", "")}`;
  expect(await store().createRobot(name, await tokenHash(token), scopes, expiresAt)).toBe("created");
  return token;
}

export function grant(pattern: string, role: Role): Grant {
  return { pattern, role };
}

export async function makePublic(namespace: string): Promise<void> {
  await store().setPublic(namespace, true);
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
