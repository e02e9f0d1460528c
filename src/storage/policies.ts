import type { Config } from "../config";
import type { Database } from "./database";

/**
 * What a namespace policy may set (migrations/0003_policies.sql,
 * 0004_retention.sql, 0007_quotas.sql). A setting left out is left to the other policies that
 * match and, where none sets it, to its var.
 */
export interface PolicySettings {
  /** A tag, once pushed, keeps its digest: no push moves it and no DELETE removes it. */
  immutableTags?: boolean;
  /** Untagged manifests are deleted this many days after their push; "never": they stay. */
  deleteUntaggedAfterDays?: number | "never";
  /** Of the tags matching keepTagsMatching, the newest this many stay and older ones are deleted; "all": every one stays. */
  keepTags?: number | "all";
  /** The tags keepTags counts, as a GLOB over tag names; others are left alone. Set together with keepTags. */
  keepTagsMatching?: string;
  /** The largest blob a push may bring, in bytes; "none": no limit but the upload's own. */
  maxBlobBytes?: number | "none";
  /** The largest manifest a PUT may bring, in bytes; MAX_MANIFEST_BYTES holds whatever this says. */
  maxManifestBytes?: number | "none";
  /** The most bytes the namespace's repositories may hold together (blobs linked plus manifests). */
  maxStorageBytes?: number | "none";
  /** The most repositories the namespace may have. */
  maxRepositories?: number | "none";
}

export interface NamespacePolicy extends PolicySettings {
  pattern: string;
  updatedAt: number;
}

/** Each setting's value where no policy matching a namespace sets it: the Worker's vars. */
export type PolicyDefaults = Required<PolicySettings>;

export function policyDefaultsOf(config: Config): PolicyDefaults {
  return {
    immutableTags: config.IMMUTABLE_TAGS === "on",
    deleteUntaggedAfterDays: config.RETENTION_UNTAGGED_DAYS,
    keepTags: config.RETENTION_KEEP_TAGS,
    keepTagsMatching: config.RETENTION_KEEP_TAGS_MATCHING,
    maxBlobBytes: config.MAX_BLOB_BYTES,
    maxManifestBytes: config.MAX_MANIFEST_BYTES,
    maxStorageBytes: config.QUOTA_MAX_STORAGE_BYTES,
    maxRepositories: config.QUOTA_MAX_REPOSITORIES,
  };
}

type Value = number | string;

/** A setting's column, and how its value is written there and read back. */
interface Column<T> {
  name: string;
  write(value: T): Value;
  read(value: Value): T;
}

// "never", "all" and "none" are 0 in their columns: a value that can stand against a var's default.
const noLimit = <Word extends string>(word: Word): Pick<Column<number | Word>, "write" | "read"> => ({
  write: (value) => (value === word ? 0 : value),
  read: (value) => (value === 0 ? word : (value as number)),
});

// The column of each setting. A new setting is a column here and in a migration.
const COLUMNS: { [Name in keyof PolicySettings]-?: Column<Required<PolicySettings>[Name]> } = {
  immutableTags: { name: "immutable_tags", write: Number, read: (value) => value === 1 },
  deleteUntaggedAfterDays: { name: "delete_untagged_after_days", ...noLimit("never") },
  keepTags: { name: "keep_tags", ...noLimit("all") },
  keepTagsMatching: { name: "keep_tags_matching", write: String, read: String },
  maxBlobBytes: { name: "max_blob_bytes", ...noLimit("none") },
  maxManifestBytes: { name: "max_manifest_bytes", ...noLimit("none") },
  maxStorageBytes: { name: "max_storage_bytes", ...noLimit("none") },
  maxRepositories: { name: "max_repositories", ...noLimit("none") },
};
const SETTINGS = Object.keys(COLUMNS) as (keyof PolicySettings)[];

/** The column that holds a setting. */
export function columnOf(setting: keyof PolicySettings): string {
  return COLUMNS[setting].name;
}

/** A setting's value as its column holds it, for SQL to weigh defaults against policies. */
export function columnValue<Name extends keyof PolicySettings>(setting: Name, value: PolicyDefaults[Name]): Value {
  return (COLUMNS[setting] as Column<PolicyDefaults[Name]>).write(value);
}

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

// The most retentive of a retention column's values, 0 being "never delete": 0 if any says so, else the largest.
const mostRetentive = (column: string) => `CASE WHEN MIN(${column}) = 0 THEN 0 ELSE MAX(${column}) END`;

/**
 * SQL: after how many days untagged manifests go in the namespace the SQL
 * `namespace` names (0: never), the most retentive value of the policies
 * matching it, else `fallback`'s.
 */
export function untaggedDaysIn(namespace: string, fallback: string): string {
  return `COALESCE((SELECT ${mostRetentive("delete_untagged_after_days")} FROM namespace_policies WHERE ${namespace} GLOB pattern), ${fallback})`;
}

/**
 * SQL: the keep-tags rules of the policies matching the namespace `namespace`
 * names, a JSON array of [tag pattern, how many to keep (0: all)], one per
 * tag pattern with its most retentive count; a policy that sets no pattern
 * counts the tags `fallbackPattern` matches. '[]' where no policy sets keep_tags.
 */
export function keepRulesIn(namespace: string, fallbackPattern: string): string {
  return `(SELECT json_group_array(json_array(tags, keep)) FROM (
    SELECT COALESCE(keep_tags_matching, ${fallbackPattern}) AS tags, ${mostRetentive("keep_tags")} AS keep FROM namespace_policies
    WHERE ${namespace} GLOB pattern AND keep_tags IS NOT NULL GROUP BY tags))`;
}

type PolicyRow = { pattern: string; updated_at: number } & Record<string, Value | null>;

/** The namespace policies in D1, set by the administrator. Requests read them inside their own statements (see immutableTagsIn). */
export class PolicyStore {
  constructor(private readonly db: Database) {}

  async list(): Promise<NamespacePolicy[]> {
    const columns = SETTINGS.map((setting) => COLUMNS[setting].name).join(", ");
    const { results } = await this.db.prepare(`SELECT pattern, ${columns}, updated_at FROM namespace_policies ORDER BY pattern`).all<PolicyRow>();
    return results.map((row) => {
      const policy: NamespacePolicy = { pattern: row.pattern, updatedAt: row.updated_at };
      for (const setting of SETTINGS) {
        const value = row[COLUMNS[setting].name];
        if (value !== null && value !== undefined) Object.assign(policy, { [setting]: COLUMNS[setting].read(value) });
      }
      return policy;
    });
  }

  /** Sets the settings given on a pattern's policy, creating it if need be; the policy's other settings stay as they were. */
  async set(pattern: string, settings: PolicySettings): Promise<void> {
    const given = SETTINGS.filter((setting) => settings[setting] !== undefined);
    const columns = given.map((setting) => COLUMNS[setting].name);
    await this.db
      .prepare(
        `INSERT INTO namespace_policies (pattern, updated_at${columns.map((column) => `, ${column}`).join("")})
         VALUES (?1, ?2${columns.map((_, i) => `, ?${i + 3}`).join("")})
         ON CONFLICT (pattern) DO UPDATE SET updated_at = excluded.updated_at${columns.map((column) => `, ${column} = excluded.${column}`).join("")}`,
      )
      .bind(pattern, Date.now(), ...given.map((setting) => columnValue(setting, settings[setting]!)))
      .run();
  }

  async remove(pattern: string): Promise<boolean> {
    const result = await this.db.prepare("DELETE FROM namespace_policies WHERE pattern = ?1").bind(pattern).run();
    return result.meta.changes > 0;
  }
}
