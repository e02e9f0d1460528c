import type { Digest } from "../oci/digest";
import type { PageRequest } from "../oci/pagination";
import type { RepositoryName } from "../oci/names";
import type { Database } from "./database";
import { toPage, type Page } from "./page";

/** An entry of a referrers list: a descriptor of a manifest whose subject is the digest asked about. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

type Row = { digest: Digest; media_type: string; size: number; artifact_type: string | null; annotations: string | null };

/** The referrers index: manifests by subject, paged by digest over (repository, subject, digest). */
export class ReferrerIndex {
  constructor(private readonly db: Database) {}

  async list(repository: RepositoryName, subject: Digest, page: PageRequest, artifactType?: string): Promise<Page<ReferrerDescriptor>> {
    if (page.limit === 0) return { items: [], more: false };
    const { results } = await this.db
      .prepare(
        `SELECT digest, media_type, size, artifact_type, annotations FROM manifests
         WHERE repository = ?1 AND subject = ?2 AND digest > ?3 AND (?4 IS NULL OR artifact_type = ?4)
         ORDER BY digest LIMIT ?5`,
      )
      .bind(repository, subject, page.last ?? "", artifactType ?? null, page.limit + 1)
      .all<Row>();
    return toPage(results.map(toDescriptor), page.limit);
  }
}

function toDescriptor(row: Row): ReferrerDescriptor {
  return {
    mediaType: row.media_type,
    digest: row.digest,
    size: row.size,
    ...(row.artifact_type ? { artifactType: row.artifact_type } : {}),
    ...(row.annotations ? { annotations: JSON.parse(row.annotations) as Record<string, string> } : {}),
  };
}
