import { digestBytes, hexOf } from "../oci/digest";
import { RegistryError } from "../oci/errors";
import type { AccessStore } from "../storage/access";
import { Memo } from "../memo";
import { hashPassword, secretsEqual, verifyPassword } from "./passwords";
import type { Principal } from "./policy";

/** Failed logins a client may make in a window before it is made to wait. */
const MAX_FAILURES = 10;
const WINDOW_SECONDS = 5 * 60;

/** A verified login is remembered this long, so a client sending Basic credentials on every request pays the hash once. */
const REMEMBER_SECONDS = 60;
const verified = new Memo<Principal & { kind: "user" | "robot" }>(REMEMBER_SECONDS);

/** A hash no password matches, checked against when the name is nobody's; made on first use (not at startup, where Workers allow no randomness). */
let unknownUserHash: Promise<string> | undefined;

/** The bootstrap administrator, from the secrets ADMIN_USERNAME and ADMIN_PASSWORD. */
export interface BootstrapAdmin {
  username?: string;
  password?: string;
}

/** Robot tokens are random, so a plain SHA-256 keeps them as safe as a slow hash would. */
export async function tokenHash(token: string): Promise<string> {
  return hexOf(await digestBytes("sha256", new TextEncoder().encode(token)));
}

/**
 * Checks a username and password: the bootstrap administrator's, a user's, or
 * a robot's token. Null when they match none; a client that fails too often
 * is refused with 429 until its window ends, before anything is checked.
 */
export async function logIn(username: string, password: string, client: string, store: AccessStore, admin: BootstrapAdmin): Promise<Principal | null> {
  const key = await tokenHash(`${username}\u0000${password}`);
  const remembered = verified.get(key);
  if (remembered) return remembered;

  const now = Date.now();
  const since = now - WINDOW_SECONDS * 1000;
  const failures = await store.loginFailures(client, since);
  if (failures && failures.failures >= MAX_FAILURES) {
    const retryAfter = Math.max(1, Math.ceil((failures.windowStart - since) / 1000));
    throw new RegistryError("TOOMANYREQUESTS", `too many failed logins; retry in ${retryAfter} s`, { headers: { "Retry-After": String(retryAfter) } });
  }
  const checked = await check(username, password, store, admin, now);
  if (!checked) {
    await store.recordLoginFailure(client, now, since);
    return null;
  }
  verified.set(key, checked.principal, checked.expiresAt);
  return checked.principal;
}

/**
 * What a user's refresh tokens are bound to: a digest of their stored
 * password hash (for the bootstrap administrator, of the secret), so a new
 * password ends them. Null when there is no such user.
 */
export async function loginFingerprint(name: string, store: AccessStore, admin: BootstrapAdmin): Promise<string | null> {
  if (name === admin.username && admin.password) return (await tokenHash(admin.password)).slice(0, 32);
  const user = await store.user(name);
  return user && (await tokenHash(user.passwordHash)).slice(0, 32);
}

/** Forgets every remembered login, when users, grants or robots change. */
export function forgetLogins(): void {
  verified.clear();
}

/** A verified login, and when it stops being valid (a robot token's expiry). */
type Checked = { principal: Principal & { kind: "user" | "robot" }; expiresAt?: number };

async function check(username: string, password: string, store: AccessStore, admin: BootstrapAdmin, now: number): Promise<Checked | null> {
  if (admin.username && admin.password && username === admin.username) {
    return (await secretsEqual(password, admin.password)) ? { principal: { kind: "user", name: username, admin: true, grants: [] } } : null;
  }
  const user = await store.user(username);
  if (user) {
    return (await verifyPassword(password, user.passwordHash)) ? { principal: { kind: "user", name: user.name, admin: user.admin, grants: user.grants } } : null;
  }
  const robot = await store.robot(username);
  if (!robot) {
    // As slow as a user's wrong password, so the answer's time does not tell which names exist.
    unknownUserHash ??= hashPassword(crypto.randomUUID());
    await verifyPassword(password, await unknownUserHash);
    return null;
  }
  if (robot.revokedAt !== null || robot.expiresAt <= now) return null;
  if (!(await secretsEqual(await tokenHash(password), robot.tokenHash))) return null;
  return { principal: { kind: "robot", name: robot.name, grants: robot.scopes }, expiresAt: robot.expiresAt };
}
