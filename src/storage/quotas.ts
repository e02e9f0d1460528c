import { namespaceOf } from "../auth/scopes";
import type { Binding, Quota, QuotaCaps, Usage } from "../oci/quotas";
import type { RepositoryName } from "../oci/names";
import type { Database } from "./database";
import { columnOf, type PolicyDefaults } from "./policies";

const SETTINGS = ["maxBlobBytes", "maxManifestBytes", "maxStorageBytes", "maxRepositories"] as const;
type QuotaSetting = (typeof SETTINGS)[number];

/** The var each quota's default comes from. */
const VARIABLES: Record<QuotaSetting, string> = {
  maxBlobBytes: "MAX_BLOB_BYTES",
  maxManifestBytes: "MAX_MANIFEST_BYTES",
  maxStorageBytes: "QUOTA_MAX_STORAGE_BYTES",
  maxRepositories: "QUOTA_MAX_REPOSITORIES",
};

const COLUMNS = SETTINGS.map(columnOf);

type Row = UsageRow & { pattern: string | null } & Record<string, number | string | null>;

/** What a namespace holds, as the admin command shows it. */
export interface NamespaceUsage {
  namespace: string;
  bytes: number;
  repositories: number;
}

/**
 * SQL, true when `size` more bytes in `repository` keep its namespace within
 * the caps (parameters `maxStorageBytes` and `maxRepositories`, NULL for no
 * limit) as its usage stands when the statement runs: in the transaction of
 * the write that would take them, so concurrent pushes cannot each pass it.
 */
export function withinCaps(p: { repository: string; namespace: string; size: string; maxStorageBytes: string; maxRepositories: string }): string {
  return `((${p.maxStorageBytes} IS NULL OR COALESCE((SELECT bytes FROM namespace_usage WHERE namespace = ${p.namespace}), 0) + ${p.size} <= ${p.maxStorageBytes})
    AND (${p.maxRepositories} IS NULL OR EXISTS (SELECT 1 FROM repositories WHERE name = ${p.repository})
      OR COALESCE((SELECT repositories FROM namespace_usage WHERE namespace = ${p.namespace}), 0) < ${p.maxRepositories}))`;
}

/** The values of withinCaps's two limits, in its parameters' order. */
export function capValues(caps: QuotaCaps | undefined): [number | null, number | null] {
  return [caps?.maxStorageBytes ?? null, caps?.maxRepositories ?? null];
}

/** SQL, one UsageRow: what the namespace (parameter `namespace`) holds, and whether `repository` is one of its repositories. */
export function usageQuery(p: { repository: string; namespace: string }): string {
  return `SELECT COALESCE(u.bytes, 0) AS used_bytes, COALESCE(u.repositories, 0) AS repositories,
      EXISTS (SELECT 1 FROM repositories WHERE name = ${p.repository}) AS repository_exists
    FROM (SELECT 1) LEFT JOIN namespace_usage u ON u.namespace = ${p.namespace}`;
}

export type UsageRow = { used_bytes: number; repositories: number; repository_exists: number };

export function usageOf(row: UsageRow): Usage {
  return { usedBytes: row.used_bytes, repositories: row.repositories, repositoryExists: row.repository_exists === 1 };
}

/**
 * Quotas and usage. Usage lives in repository_usage and namespace_usage,
 * which triggers keep (migrations/0007_quotas.sql); quotas are namespace
 * policies' settings, most restrictive winning, else the vars.
 */
export class QuotaStore {
  constructor(private readonly db: Database) {}

  /**
   * The quota a push into `repository` is held to, with what its namespace
   * holds: one D1 query, reading the namespace's usage row, the repository's
   * and the policies (a push reads them afresh, so a change applies at once).
   */
  async of(repository: RepositoryName, defaults: PolicyDefaults): Promise<Quota> {
    const namespace = namespaceOf(repository);
    const { results } = await this.db
      .prepare(
        `SELECT usage.*, p.pattern, ${COLUMNS.map((column) => `p.${column}`).join(", ")}
         FROM (${usageQuery({ repository: "?2", namespace: "?1" })}) usage
         LEFT JOIN namespace_policies p ON ?1 GLOB p.pattern AND COALESCE(${COLUMNS.map((column) => `p.${column}`).join(", ")}) IS NOT NULL
         ORDER BY p.pattern`,
      )
      .bind(namespace, repository)
      .all<Row>();
    const quota: Quota = {
      namespace,
      ...usageOf(results[0]!),
      maxBlobBytes: null,
      maxManifestBytes: null,
      maxStorageBytes: null,
      maxRepositories: null,
    };
    for (const setting of SETTINGS) quota[setting] = bindingOf(setting, results, defaults);
    return quota;
  }

  /** Every namespace's usage, or one's. */
  async namespaces(namespace?: string): Promise<NamespaceUsage[]> {
    const { results } = await this.db
      .prepare("SELECT namespace, bytes, repositories FROM namespace_usage WHERE ?1 IS NULL OR namespace = ?1 ORDER BY namespace")
      .bind(namespace ?? null)
      .all<NamespaceUsage>();
    return results;
  }

  /** The bytes each repository of a namespace holds. */
  async repositories(namespace: string): Promise<{ repository: string; bytes: number }[]> {
    const { results } = await this.db
      .prepare("SELECT repository, bytes FROM repository_usage WHERE repository = ?1 OR repository GLOB ?1 || '/*' ORDER BY repository")
      .bind(namespace)
      .all<{ repository: string; bytes: number }>();
    return results;
  }
}

/**
 * The most restrictive limit the matching policies set (the smallest; "none",
 * 0 in the column, only when each one that sets it says so), else the var's.
 */
function bindingOf(setting: QuotaSetting, rows: Row[], defaults: PolicyDefaults): Binding | null {
  const column = columnOf(setting);
  let binding: Binding | null = null;
  let set = false;
  for (const row of rows) {
    const value = row[column];
    if (typeof value !== "number") continue;
    set = true;
    if (value > 0 && (!binding || value < binding.value)) binding = { value, source: { policy: row.pattern! } };
  }
  if (set) return binding;
  const fallback = defaults[setting];
  return fallback === "none" ? null : { value: fallback, source: { variable: VARIABLES[setting] } };
}
