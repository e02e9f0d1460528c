import type { Digest } from "../oci/digest";
import type { PageRequest } from "../oci/pagination";
import type { RepositoryName } from "../oci/names";
import type { Database } from "./database";
import { toPage, type Page } from "./page";

/**
 * An entry of a referrers list: the descriptor of a manifest whose subject is
 * the digest asked about, as the JSON text a referrers page carries.
 */
export interface Referrer {
  digest: Digest;
  descriptor: string;
}

type Row = { digest: Digest; media_type: string; size: number; artifact_type: string | null; annotations: string | null };

/** The referrers index: manifests by subject, paged by digest over (repository, subject, digest). */
export class ReferrerIndex {
  constructor(private readonly db: Database) {}

  async list(repository: RepositoryName, subject: Digest, page: PageRequest, artifactType?: string): Promise<Page<Referrer>> {
    if (page.limit === 0) return { items: [], more: false };
    const { results } = await this.db
      .prepare(
        `SELECT digest, media_type, size, artifact_type, annotations FROM manifests
         WHERE repository = ?1 AND subject = ?2 AND digest > ?3 AND (?4 IS NULL OR artifact_type = ?4)
         ORDER BY digest LIMIT ?5`,
      )
      .bind(repository, subject, page.last ?? "", artifactType ?? null, page.limit + 1)
      .all<Row>();
    return toPage(results.map(toReferrer), page.limit);
  }
}

// Written as text, not parsed and serialized again: the annotations column holds
// JSON.stringify's output from the manifest PUT, and a digest needs no escaping.
function toReferrer(row: Row): Referrer {
  const artifactType = row.artifact_type ? `,"artifactType":${JSON.stringify(row.artifact_type)}` : "";
  const annotations = row.annotations ? `,"annotations":${row.annotations}` : "";
  return {
    digest: row.digest,
    descriptor: `{"mediaType":${JSON.stringify(row.media_type)},"digest":"${row.digest}","size":${row.size}${artifactType}${annotations}}`,
  };
}
