import type { Digest } from "../oci/digest";
import { descriptorsThatFit } from "../oci/limits";
import type { PageRequest } from "../oci/pagination";
import type { RepositoryName } from "../oci/names";
import type { Database } from "./database";
import { versionedPageQuery, VersionedPages } from "./versioned-pages";

/** A page of a referrers list: the descriptors of manifests whose subject is the digest asked about. */
export interface ReferrersPage {
  /** The descriptors' JSON texts in digest order, joined by commas ("" when there are none). */
  descriptors: string;
  /** The digest of the page's last descriptor, where the next page begins; null when the page is empty. */
  last: Digest | null;
  /** Whether referrers follow the last one. */
  more: boolean;
}

// The first ?5 referrers of repository ?1 to subject ?2 after digest ?3, of artifact type ?4 if not NULL, with their
// descriptors: all of it in the index manifests_by_subject, so no manifest's row is read.
const LISTED = `SELECT digest, descriptor FROM manifests
  WHERE repository = ?1 AND subject = ?2 AND digest > ?3 AND (?4 IS NULL OR artifact_type = ?4) ORDER BY digest LIMIT ?5`;

/*
 * The page as one row: SQLite joins the descriptors, counts their UTF-8
 * bytes, and looks for a referrer after the last, so the Worker turns no row
 * into an object. The join reads the rows in the order LISTED sorts them
 * (SQLite never flattens a subquery with LIMIT into an aggregate; an ORDER BY
 * inside group_concat would need SQLite 3.44), and which rows a page holds,
 * and so its `last`, does not depend on that order.
 */
const JOINED = `SELECT page.*, EXISTS (SELECT 1 FROM manifests WHERE repository = ?1 AND subject = ?2 AND digest > page.last AND (?4 IS NULL OR artifact_type = ?4)) AS more
  FROM (SELECT group_concat(descriptor, ',') AS descriptors, sum(length(CAST(descriptor AS BLOB)) + 1) - 1 AS bytes, max(digest) AS last FROM (${LISTED})) page`;

type JoinedRow = { descriptors: string | null; bytes: number | null; last: Digest | null; more: number };

// The version of the referrers list of subject ?2 in repository ?1; and with it, its page.
const VERSION = "SELECT version FROM referrer_lists WHERE repository = ?1 AND subject = ?2";
const PAGE = versionedPageQuery(VERSION, JOINED);

const EMPTY: ReferrersPage = { descriptors: "", last: null, more: false };

/** Referrers pages this isolate listed: 4 MiB of descriptors in all (ASCII or nearly). */
const remembered = new VersionedPages<ReferrersPage>(4 * 1024 * 1024, (page) => page.descriptors.length);

/** The referrers index: manifests by subject, paged by digest over (repository, subject, digest); a page one row when remembered. */
export class ReferrerIndex {
  constructor(private readonly db: Database) {}

  /**
   * The first `page.limit` referrers after `page.last`, cut before their
   * descriptors, joined, pass `maxBytes` UTF-8 bytes (but never before the first).
   */
  async page(repository: RepositoryName, subject: Digest, page: PageRequest, maxBytes: number, artifactType?: string): Promise<ReferrersPage> {
    if (page.limit === 0) return EMPTY;
    const params = [repository, subject, page.last ?? "", artifactType ?? null, page.limit];
    // The artifact type, the one part a client writes freely, last and only when asked for.
    const key = `${repository} ${subject} ${page.last ?? ""} ${page.limit} ${maxBytes}${artifactType === undefined ? "" : `\n${artifactType}`}`;
    const found = await remembered.page(
      key,
      { version: () => this.db.prepare(VERSION).bind(repository, subject), page: () => this.db.prepare(PAGE).bind(...params) },
      (joined: JoinedRow) => this.#pageOf(joined, params, maxBytes),
    );
    return found ?? EMPTY;
  }

  async #pageOf(joined: JoinedRow, params: unknown[], maxBytes: number): Promise<ReferrersPage> {
    if (!joined.last) return EMPTY;
    if (joined.bytes! <= maxBytes) return { descriptors: joined.descriptors!, last: joined.last, more: joined.more === 1 };
    // Past the limit (descriptors with large annotations): read again one by one, to cut it.
    const { results } = await this.db.prepare(LISTED).bind(...params).all<{ digest: Digest; descriptor: string }>();
    const count = descriptorsThatFit(results.map((row) => row.descriptor), maxBytes);
    const kept = results.slice(0, count);
    return { descriptors: kept.map((row) => row.descriptor).join(","), last: kept.at(-1)!.digest, more: count < results.length || joined.more === 1 };
  }
}
