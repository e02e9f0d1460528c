import type { Config } from "../config";
import type { Database } from "./database";

/**
 * What a namespace policy may set (migrations/0003_policies.sql). A setting
 * left out is left to the other policies that match and, where none sets it,
 * to its var.
 */
export interface PolicySettings {
  /** A tag, once pushed, keeps its digest: no push moves it and no DELETE removes it. */
  immutableTags?: boolean;
}

export interface NamespacePolicy extends PolicySettings {
  pattern: string;
  updatedAt: number;
}

/** Each setting's value where no policy matching a namespace sets it: the Worker's vars. */
export type PolicyDefaults = Required<PolicySettings>;

export function policyDefaultsOf(config: Config): PolicyDefaults {
  return { immutableTags: config.IMMUTABLE_TAGS === "on" };
}

// The column of each setting. A new setting is a column here and in a migration.
const COLUMNS = { immutableTags: "immutable_tags" } as const satisfies Record<keyof PolicySettings, string>;

type PolicyRow = { pattern: string; immutable_tags: number | null; updated_at: number };

/**
 * SQL, true when tags are immutable in the namespace that the parameter
 * `namespace` holds: the most restrictive value of the policies matching it,
 * else the default that the parameter `fallback` holds (1 or 0).
 */
export function immutableTagsIn(namespace: string, fallback: string): string {
  return `COALESCE((SELECT MAX(immutable_tags) FROM namespace_policies WHERE ${namespace} GLOB pattern), ${fallback})`;
}

/** SQL: the pattern of a policy that makes tags immutable in the namespace `namespace` holds; NULL when the default does. */
export function immutableTagsPolicyIn(namespace: string): string {
  return `(SELECT pattern FROM namespace_policies WHERE ${namespace} GLOB pattern AND immutable_tags = 1 ORDER BY pattern LIMIT 1)`;
}

/** The namespace policies in D1, set by the administrator. Requests read them inside their own statements (see immutableTagsIn). */
export class PolicyStore {
  constructor(private readonly db: Database) {}

  async list(): Promise<NamespacePolicy[]> {
    const { results } = await this.db.prepare("SELECT pattern, immutable_tags, updated_at FROM namespace_policies ORDER BY pattern").all<PolicyRow>();
    return results.map((row) => ({
      pattern: row.pattern,
      ...(row.immutable_tags === null ? {} : { immutableTags: row.immutable_tags === 1 }),
      updatedAt: row.updated_at,
    }));
  }

  /** Sets the settings given on a pattern's policy, creating it if need be; the policy's other settings stay as they were. */
  async set(pattern: string, settings: PolicySettings): Promise<void> {
    const given = (Object.keys(COLUMNS) as (keyof PolicySettings)[]).filter((name) => settings[name] !== undefined);
    const columns = given.map((name) => COLUMNS[name]);
    await this.db
      .prepare(
        `INSERT INTO namespace_policies (pattern, updated_at${columns.map((column) => `, ${column}`).join("")})
         VALUES (?1, ?2${columns.map((_, i) => `, ?${i + 3}`).join("")})
         ON CONFLICT (pattern) DO UPDATE SET updated_at = excluded.updated_at${columns.map((column) => `, ${column} = excluded.${column}`).join("")}`,
      )
      .bind(pattern, Date.now(), ...given.map((name) => Number(settings[name])))
      .run();
  }

  async remove(pattern: string): Promise<boolean> {
    const result = await this.db.prepare("DELETE FROM namespace_policies WHERE pattern = ?1").bind(pattern).run();
    return result.meta.changes > 0;
  }
}
