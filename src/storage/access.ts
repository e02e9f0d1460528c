import type { Role } from "../auth/scopes";
import type { Database } from "./database";
import type { Databases } from "./session";

/** A role on the namespaces a pattern matches. */
export interface Grant {
  pattern: string;
  role: Role;
}

export interface StoredUser {
  name: string;
  passwordHash: string;
  admin: boolean;
  grants: Grant[];
}

export interface StoredRobot {
  name: string;
  tokenHash: string;
  scopes: Grant[];
  expiresAt: number;
  revokedAt: number | null;
}

/** What the admin sees of a robot: never its token's hash. */
export type RobotSummary = Omit<StoredRobot, "tokenHash"> & { createdAt: number };

/**
 * The outcome of creating a login name: users and robots share one space of
 * names, and a user owns the namespace of their name, so a user may not be
 * made the owner of repositories that already exist.
 */
export type Creation = "created" | "taken" | "namespace-in-use";

// Whether ?1 names a user or a robot that still works.
const NAME_TAKEN = "EXISTS (SELECT 1 FROM users WHERE name = ?1) OR EXISTS (SELECT 1 FROM robots WHERE name = ?1 AND revoked_at IS NULL)";
// Whether the namespace ?1 holds repositories.
const NAMESPACE_IN_USE = "EXISTS (SELECT 1 FROM repositories WHERE name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '/')";

/**
 * Users, their grants, robot tokens, public namespaces and failed logins, in D1.
 * What a login checks is read from the primary, so a user, password or robot
 * made a moment ago works at once (verified logins are remembered, so this is rare);
 * the rest from the request's session.
 */
export class AccessStore {
  constructor(private readonly databases: Databases) {}

  private get db(): Database {
    return this.databases.db;
  }

  private get primary(): Database {
    return this.databases.primary ?? this.databases.db;
  }

  /** A user with their grants, in one query. */
  async user(name: string): Promise<StoredUser | null> {
    const row = await this.primary
      .prepare(
        `SELECT u.name, u.password_hash, u.admin,
           (SELECT json_group_array(json_object('pattern', g.pattern, 'role', g.role)) FROM grants g WHERE g.user = u.name) AS grants
         FROM users u WHERE u.name = ?1`,
      )
      .bind(name)
      .first<{ name: string; password_hash: string; admin: number; grants: string }>();
    return row && { name: row.name, passwordHash: row.password_hash, admin: row.admin === 1, grants: JSON.parse(row.grants) as Grant[] };
  }

  async robot(name: string): Promise<StoredRobot | null> {
    const row = await this.primary
      .prepare("SELECT name, token_hash, scopes, expires_at, revoked_at FROM robots WHERE name = ?1")
      .bind(name)
      .first<{ name: string; token_hash: string; scopes: string; expires_at: number; revoked_at: number | null }>();
    return row && { name: row.name, tokenHash: row.token_hash, scopes: JSON.parse(row.scopes) as Grant[], expiresAt: row.expires_at, revokedAt: row.revoked_at };
  }

  async isPublic(namespace: string): Promise<boolean> {
    return (await this.db.prepare("SELECT 1 AS public FROM public_namespaces WHERE name = ?1").bind(namespace).first()) !== null;
  }

  /** Failed logins from `client` in the window that began no earlier than `since`. */
  async loginFailures(client: string, since: number): Promise<{ failures: number; windowStart: number } | null> {
    const row = await this.primary
      .prepare("SELECT failures, window_start FROM login_failures WHERE client = ?1 AND window_start >= ?2")
      .bind(client, since)
      .first<{ failures: number; window_start: number }>();
    return row && { failures: row.failures, windowStart: row.window_start };
  }

  /** Counts a failed login, in the current window or in a new one from `now` when that one began before `since`. */
  async recordLoginFailure(client: string, now: number, since: number): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO login_failures (client, window_start, failures) VALUES (?1, ?2, 1)
         ON CONFLICT (client) DO UPDATE SET
           failures = CASE WHEN window_start >= ?3 THEN failures + 1 ELSE 1 END,
           window_start = CASE WHEN window_start >= ?3 THEN window_start ELSE ?2 END`,
      )
      .bind(client, now, since)
      .run();
  }

  async createUser(name: string, passwordHash: string, admin: boolean): Promise<Creation> {
    const [inserted, state] = await this.db.batch<{ taken: number }>([
      this.db
        .prepare(
          `INSERT INTO users (name, password_hash, admin, created_at) SELECT ?1, ?2, ?3, ?4
           WHERE NOT (${NAME_TAKEN}) AND NOT ${NAMESPACE_IN_USE} AND NOT EXISTS (SELECT 1 FROM robots WHERE name = ?1)`,
        )
        .bind(name, passwordHash, admin ? 1 : 0, Date.now()),
      this.db.prepare(`SELECT (${NAME_TAKEN}) OR EXISTS (SELECT 1 FROM robots WHERE name = ?1) AS taken`).bind(name),
    ]);
    if (inserted!.meta.changes > 0) return "created";
    return state!.results[0]!.taken ? "taken" : "namespace-in-use";
  }

  async deleteUser(name: string): Promise<boolean> {
    const [, deleted] = await this.db.batch([
      this.db.prepare("DELETE FROM grants WHERE user = ?1").bind(name),
      this.db.prepare("DELETE FROM users WHERE name = ?1").bind(name),
    ]);
    return (deleted?.meta.changes ?? 0) > 0;
  }

  async setPassword(name: string, passwordHash: string): Promise<boolean> {
    const result = await this.db.prepare("UPDATE users SET password_hash = ?2 WHERE name = ?1").bind(name, passwordHash).run();
    return result.meta.changes > 0;
  }

  /** Gives `user` a role on a namespace pattern (replacing the role they had there); false when there is no such user. */
  async grant(user: string, grant: Grant): Promise<boolean> {
    const result = await this.db
      .prepare(
        `INSERT INTO grants (user, pattern, role) SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE name = ?1)
         ON CONFLICT (user, pattern) DO UPDATE SET role = excluded.role`,
      )
      .bind(user, grant.pattern, grant.role)
      .run();
    return result.meta.changes > 0;
  }

  async revoke(user: string, pattern: string): Promise<boolean> {
    const result = await this.db.prepare("DELETE FROM grants WHERE user = ?1 AND pattern = ?2").bind(user, pattern).run();
    return result.meta.changes > 0;
  }

  /** Creates a robot, or gives a revoked one's name a new token and scopes. */
  async createRobot(name: string, tokenHash: string, scopes: Grant[], expiresAt: number): Promise<Exclude<Creation, "namespace-in-use">> {
    const result = await this.db
      .prepare(
        `INSERT INTO robots (name, token_hash, scopes, expires_at, created_at) SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT (${NAME_TAKEN})
         ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, scopes = excluded.scopes, expires_at = excluded.expires_at,
           revoked_at = NULL, created_at = excluded.created_at`,
      )
      .bind(name, tokenHash, JSON.stringify(scopes), expiresAt, Date.now())
      .run();
    return result.meta.changes > 0 ? "created" : "taken";
  }

  async revokeRobot(name: string): Promise<boolean> {
    const result = await this.db.prepare("UPDATE robots SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL").bind(name, Date.now()).run();
    return result.meta.changes > 0;
  }

  async setPublic(namespace: string, isPublic: boolean): Promise<void> {
    const statement = isPublic
      ? this.db.prepare("INSERT INTO public_namespaces (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING").bind(namespace, Date.now())
      : this.db.prepare("DELETE FROM public_namespaces WHERE name = ?1").bind(namespace);
    await statement.run();
  }

  async users(): Promise<Omit<StoredUser, "passwordHash">[]> {
    const { results } = await this.db
      .prepare(
        `SELECT u.name, u.admin,
           (SELECT json_group_array(json_object('pattern', g.pattern, 'role', g.role)) FROM grants g WHERE g.user = u.name) AS grants
         FROM users u ORDER BY u.name`,
      )
      .all<{ name: string; admin: number; grants: string }>();
    return results.map((r) => ({ name: r.name, admin: r.admin === 1, grants: JSON.parse(r.grants) as Grant[] }));
  }

  async robots(): Promise<RobotSummary[]> {
    const { results } = await this.db
      .prepare("SELECT name, scopes, expires_at, revoked_at, created_at FROM robots ORDER BY name")
      .all<{ name: string; scopes: string; expires_at: number; revoked_at: number | null; created_at: number }>();
    return results.map((r) => ({ name: r.name, scopes: JSON.parse(r.scopes) as Grant[], expiresAt: r.expires_at, revokedAt: r.revoked_at, createdAt: r.created_at }));
  }

  async publicNamespaces(): Promise<string[]> {
    const { results } = await this.db.prepare("SELECT name FROM public_namespaces ORDER BY name").all<{ name: string }>();
    return results.map((r) => r.name);
  }
}
