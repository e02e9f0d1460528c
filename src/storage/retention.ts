import { namespaceOf } from "../auth/scopes";
import type { Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";
import { columnValue, immutableTagsIn, keepRulesIn, untaggedDaysIn, type PolicyDefaults } from "./policies";
import { NAMESPACE } from "./repositories";

/** Of the tags matching `tags` (a GLOB), the newest `keep` by their last push stay, older ones go; 0 keeps them all. */
export interface KeepRule {
  tags: string;
  keep: number;
}

/** What retention may delete in one repository, as the policies of its namespace and the defaults say. */
export interface RepositoryRetention {
  repository: RepositoryName;
  /** Untagged manifests pushed more than this many days ago go; 0: none does. */
  untaggedDays: number;
  keepRules: KeepRule[];
}

/** The most keep-tags rules one statement weighs: two bound parameters each, within D1's 100. */
export const MAX_KEEP_RULES = 40;

// Over ?1 a repository and ?2 a time: a manifest of it pushed before then that
// nothing keeps. No tag points at it, no manifest of the repository lists it
// (an index its child), and it is no referrer of a manifest still there.
const UNKEPT_ROOT = `m.repository = ?1 AND m.created_at < ?2
  AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.target_digest = m.digest AND r.repository = m.repository)
  AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = m.repository AND s.digest = m.subject))`;
// A referrer that goes with its subject: untagged, and listed by no manifest.
const UNKEPT_REFERRER = `NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.target_digest = m.digest AND r.repository = m.repository)`;

/**
 * The SQL of retention (src/lifecycle/retention.ts runs it). Every statement
 * touches at most a batch of rows through an index, and each batch is one
 * transaction, so a run can stop between any two and the next picks up what
 * is left: what a batch leaves is exactly what it did not get to.
 */
export class RetentionStore {
  constructor(private readonly db: D1Database) {}

  /**
   * Up to `limit` repositories named after `after` (and up to `upTo`, when
   * given), in name order, in which retention may delete something.
   */
  async repositories(range: { after: string; upTo: string | null }, defaults: PolicyDefaults, limit: number): Promise<RepositoryRetention[]> {
    const { results } = await this.db
      .prepare(
        `SELECT name, untagged_days, keep_rules FROM (
           SELECT name, untagged_days, CASE WHEN rules = '[]' THEN json_array(json_array(?5, ?4)) ELSE rules END AS keep_rules FROM (
             SELECT name, ${untaggedDaysIn(NAMESPACE, "?3")} AS untagged_days, ${keepRulesIn(NAMESPACE, "?5")} AS rules
             FROM repositories WHERE name > ?1 AND (?2 IS NULL OR name <= ?2)))
         WHERE untagged_days > 0 OR EXISTS (SELECT 1 FROM json_each(keep_rules) WHERE value ->> 1 > 0)
         ORDER BY name LIMIT ?6`,
      )
      .bind(range.after, range.upTo, columnValue("deleteUntaggedAfterDays", defaults.deleteUntaggedAfterDays), columnValue("keepTags", defaults.keepTags), defaults.keepTagsMatching, limit)
      .all<{ name: RepositoryName; untagged_days: number; keep_rules: string }>();
    return results.map((row) => ({
      repository: row.name,
      untaggedDays: row.untagged_days,
      keepRules: (JSON.parse(row.keep_rules) as [string, number][]).map(([tags, keep]) => ({ tags, keep })),
    }));
  }

  /**
   * Deletes up to `limit` tags, oldest first, that some rule counts beyond
   * its newest and no rule keeps; none where tags are immutable (the
   * namespace's policies, else `immutableByDefault`). Returns how many went.
   * At most MAX_KEEP_RULES rules.
   */
  async trimTags(repository: RepositoryName, rules: KeepRule[], immutableByDefault: boolean, limit: number): Promise<number> {
    // Rule i binds its pattern to ?(5+2i) and its count to ?(6+2i), -1 (no LIMIT) keeping every match.
    const pattern = (i: number) => `?${5 + 2 * i}`;
    const count = (i: number) => `?${6 + 2 * i}`;
    const counted = rules.map((_, i) => `(${count(i)} >= 0 AND name GLOB ${pattern(i)})`).join(" OR ");
    const kept = rules
      .map((_, i) => `SELECT name FROM (SELECT name FROM tags WHERE repository = ?1 AND name GLOB ${pattern(i)} ORDER BY updated_at DESC, name DESC LIMIT ${count(i)})`)
      .join(" UNION ALL ");
    const result = await this.db
      .prepare(
        `DELETE FROM tags WHERE repository = ?1 AND name IN (
           SELECT name FROM tags WHERE repository = ?1 AND (${counted}) AND name NOT IN (${kept})
           ORDER BY updated_at, name LIMIT ?4)
         AND NOT ${immutableTagsIn("?2", "?3")}`,
      )
      .bind(repository, namespaceOf(repository), immutableByDefault ? 1 : 0, limit, ...rules.flatMap((rule) => [rule.tags, rule.keep === 0 ? -1 : rule.keep]))
      .run();
    return result.meta.changes;
  }

  /**
   * Deletes up to `limit` manifests of the repository, with their
   * references: those pushed before `pushedBefore` that nothing keeps, and
   * with each the untagged referrers that have it as subject, referrers of
   * referrers too. Referrers go before their subjects: a batch that cannot
   * take all of a manifest's referrers leaves it, still unkept, for the next.
   * A manifest an index lists stays until the index goes, then goes in a later
   * batch if old enough. Returns the digests deleted.
   */
  async deleteUntagged(repository: RepositoryName, pushedBefore: number, limit: number): Promise<Digest[]> {
    const results = await this.db.batch<{ digest: Digest }>([
      this.db
        .prepare(
          `INSERT OR IGNORE INTO retention_doomed (digest)
           WITH RECURSIVE doomed (digest, depth) AS (
             SELECT digest, 0 FROM (SELECT m.digest FROM manifests m WHERE ${UNKEPT_ROOT} ORDER BY m.created_at LIMIT ?3)
             UNION ALL
             SELECT m.digest, d.depth + 1 FROM doomed d JOIN manifests m ON m.repository = ?1 AND m.subject = d.digest WHERE ${UNKEPT_REFERRER}
           )
           SELECT digest FROM doomed ORDER BY depth DESC LIMIT ?3`,
        )
        .bind(repository, pushedBefore, limit),
      this.db.prepare("DELETE FROM manifest_references WHERE repository = ?1 AND manifest_digest IN (SELECT digest FROM retention_doomed)").bind(repository),
      // The R2 objects of doomed manifests that no other row shares become garbage collection's to free.
      this.db
        .prepare(
          `INSERT INTO object_intents (object_key, expires_at)
           SELECT DISTINCT m.object_key, ?2 FROM manifests m WHERE m.repository = ?1 AND m.digest IN (SELECT digest FROM retention_doomed) AND m.object_key IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM manifests o WHERE o.object_key = m.object_key AND (o.repository <> ?1 OR o.digest NOT IN (SELECT digest FROM retention_doomed)))
           ON CONFLICT DO NOTHING`,
        )
        .bind(repository, Date.now()),
      this.db.prepare("DELETE FROM manifests WHERE repository = ?1 AND digest IN (SELECT digest FROM retention_doomed)").bind(repository),
      this.db.prepare("DELETE FROM retention_doomed RETURNING digest"),
    ]);
    return results[4]!.results.map((row) => row.digest);
  }
}
