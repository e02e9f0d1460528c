import type { Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";
import { forgetFoundBlobs } from "./blobs";
import { forgetIntents } from "./intents";

/** The last link a mark of links looked at; empty strings before the first. */
export interface LinkPosition {
  repository: string;
  digest: string;
}

/** What one batch of a mark looked at: how many rows, and the last one (null: none, the end of the table). */
export interface MarkedPage<Position> {
  rows: number;
  last: Position | null;
}

/** What one batch of a sweep did: rows deleted, and how many candidates it weighed (deleted or forgotten). */
export interface SweptBatch {
  deleted: number;
  weighed: number;
}

// A manifest of the link's repository (alias p) references its blob.
const REFERENCED = "EXISTS (SELECT 1 FROM manifest_references r WHERE r.target_digest = p.digest AND r.repository = p.repository AND r.target_kind = 'blob')";
// Some repository holds the blob p.
const HELD = "EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = p.digest)";
// Some D1 row points at the key i.object_key (indexes of migrations/0005).
const POINTED = `(EXISTS (SELECT 1 FROM blobs b WHERE b.object_key = i.object_key)
  OR EXISTS (SELECT 1 FROM manifests m WHERE m.object_key = i.object_key))`;

// Over ?1, ?2 the last link looked at and ?3 a batch size: the next links in key order.
const LINK_PAGE = "SELECT repository, digest, created_at FROM repository_blobs WHERE (repository, digest) > (?1, ?2) ORDER BY repository, digest LIMIT ?3";
// Over ?1 the last blob looked at and ?2 a batch size: the next blobs in digest order.
const BLOB_PAGE = "SELECT digest FROM blobs WHERE digest > ?1 ORDER BY digest LIMIT ?2";
// Over ?1 a time and ?2 a batch size: the oldest candidates first found unused before then.
const DUE_LINKS = "SELECT repository, digest, linked_at FROM gc_links WHERE seen_at <= ?1 ORDER BY seen_at, repository, digest LIMIT ?2";
const DUE_BLOBS = "SELECT digest FROM gc_blobs WHERE seen_at <= ?1 ORDER BY seen_at, digest LIMIT ?2";

/**
 * The SQL of garbage collection (src/lifecycle/gc.ts runs it) and its R2
 * deletes. Every batch is one transaction over at most a batch of rows read
 * through an index, so a run can stop between any two. Candidates are only
 * ever deleted by a statement that checks, in the same transaction, that they
 * are still out of use.
 */
export class GcStore {
  constructor(
    private readonly db: D1Database,
    private readonly bucket: R2Bucket,
  ) {}

  /**
   * Marks the links after `after`: a link no manifest of its repository
   * references becomes a candidate seen `now` (unless it already is one for
   * the same linking), one that is referenced stops being one.
   */
  async markLinks(after: LinkPosition, now: number, limit: number): Promise<MarkedPage<LinkPosition>> {
    const page = [after.repository, after.digest, limit];
    const [, , rows] = await this.db.batch<LinkPosition>([
      this.db
        .prepare(
          `INSERT INTO gc_links (repository, digest, seen_at, linked_at)
           SELECT repository, digest, ?4, created_at FROM (${LINK_PAGE}) p WHERE NOT ${REFERENCED}
           ON CONFLICT (repository, digest) DO UPDATE SET
             seen_at = CASE WHEN gc_links.linked_at = excluded.linked_at THEN gc_links.seen_at ELSE excluded.seen_at END,
             linked_at = excluded.linked_at`,
        )
        .bind(...page, now),
      this.db.prepare(`DELETE FROM gc_links WHERE (repository, digest) IN (SELECT repository, digest FROM (${LINK_PAGE}) p WHERE ${REFERENCED})`).bind(...page),
      this.db.prepare(`SELECT repository, digest FROM (${LINK_PAGE})`).bind(...page),
    ]);
    const looked = rows!.results;
    return { rows: looked.length, last: looked.at(-1) ?? null };
  }

  /**
   * Deletes the links first found unused at or before `seenBefore`, unless a
   * manifest references them now or they were linked again since; forgets
   * every candidate it weighed.
   */
  async sweepLinks(seenBefore: number, limit: number): Promise<SweptBatch> {
    // The links deleted are what RETURNING gives back (meta.changes also counts the rows the usage triggers update), which this isolate forgets.
    const [deleted, weighed] = await this.db.batch<{ repository: RepositoryName; digest: Digest }>([
      this.db
        .prepare(
          `DELETE FROM repository_blobs AS p WHERE (repository, digest, created_at) IN (${DUE_LINKS}) AND NOT ${REFERENCED} RETURNING repository, digest`,
        )
        .bind(seenBefore, limit),
      this.db.prepare(`DELETE FROM gc_links WHERE (repository, digest) IN (SELECT repository, digest FROM (${DUE_LINKS}))`).bind(seenBefore, limit),
    ]);
    forgetFoundBlobs(deleted!.results);
    return { deleted: deleted!.results.length, weighed: weighed!.meta.changes };
  }

  /** Marks the blobs after `after`: one no repository holds becomes a candidate seen `now`, one held stops being one. */
  async markBlobs(after: string, now: number, limit: number): Promise<MarkedPage<string>> {
    const [, , rows] = await this.db.batch<{ digest: string }>([
      this.db.prepare(`INSERT INTO gc_blobs (digest, seen_at) SELECT digest, ?3 FROM (${BLOB_PAGE}) p WHERE NOT ${HELD} ON CONFLICT DO NOTHING`).bind(after, limit, now),
      this.db.prepare(`DELETE FROM gc_blobs WHERE digest IN (SELECT digest FROM (${BLOB_PAGE}) p WHERE ${HELD})`).bind(after, limit),
      this.db.prepare(BLOB_PAGE).bind(after, limit),
    ]);
    const looked = rows!.results;
    return { rows: looked.length, last: looked.at(-1)?.digest ?? null };
  }

  /**
   * Deletes the blob rows first found unheld at or before `seenBefore` and
   * still unheld, recording each one's key as an intent expiring `now` in the
   * same transaction, so that the object is freed (sweepIntents) even if the
   * run stops here; forgets every candidate it weighed.
   */
  async sweepBlobs(seenBefore: number, now: number, limit: number): Promise<SweptBatch> {
    const unheld = "NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest)";
    const [, deleted, weighed] = await this.db.batch([
      this.db
        .prepare(`INSERT INTO object_intents (object_key, expires_at) SELECT object_key, ?3 FROM blobs WHERE digest IN (${DUE_BLOBS}) AND ${unheld} ON CONFLICT DO NOTHING`)
        .bind(seenBefore, limit, now),
      this.db.prepare(`DELETE FROM blobs WHERE digest IN (${DUE_BLOBS}) AND ${unheld}`).bind(seenBefore, limit),
      this.db.prepare(`DELETE FROM gc_blobs WHERE digest IN (${DUE_BLOBS})`).bind(seenBefore, limit),
    ]);
    return { deleted: deleted!.meta.changes, weighed: weighed!.meta.changes };
  }

  /** Up to `limit` intents expired at `now`, oldest first, each with whether a D1 row points at its key. */
  async expiredIntents(now: number, limit: number): Promise<{ key: string; pointed: boolean }[]> {
    const { results } = await this.db
      .prepare(`SELECT object_key, ${POINTED} AS pointed FROM object_intents i WHERE expires_at <= ?1 ORDER BY expires_at, object_key LIMIT ?2`)
      .bind(now, limit)
      .all<{ object_key: string; pointed: number }>();
    return results.map((row) => ({ key: row.object_key, pointed: row.pointed === 1 }));
  }

  /** Deletes the objects at `keys` from R2 (at most 1,000, R2's limit for one call). */
  async deleteObjects(keys: string[]): Promise<void> {
    if (keys.length > 0) await this.bucket.delete(keys);
  }

  /**
   * Removes the intents of `freed` keys (their objects deleted) and of
   * `published` ones that a D1 row still points at (a writer that published
   * its key; one no longer pointed at stays, to be freed next time).
   */
  async forgetIntents(freed: string[], published: string[]): Promise<void> {
    await this.db.batch([
      forgetIntents(this.db, freed),
      this.db.prepare(`DELETE FROM object_intents AS i WHERE object_key IN (SELECT value FROM json_each(?1)) AND ${POINTED}`).bind(JSON.stringify(published)),
    ]);
  }
}

/** A mark's position as the lifecycle cursor stores it. */
export function linkPositionOf(position: string): LinkPosition {
  if (position === "") return { repository: "", digest: "" };
  const [repository, digest] = JSON.parse(position) as [string, string];
  return { repository, digest };
}

export function storedLinkPosition(position: LinkPosition): string {
  return JSON.stringify([position.repository, position.digest]);
}
