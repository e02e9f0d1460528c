import { namespaceOf } from "../auth/scopes";
import type { Digest } from "../oci/digest";
import { referrerDescriptor, type ParsedManifest } from "../oci/manifest";
import type { Reference, RepositoryName, Tag } from "../oci/names";
import type { QuotaCaps, Usage } from "../oci/quotas";
import type { Database } from "./database";
import { clearManifestIntent, recordIntent, REQUEST_INTENT_MARGIN_MS } from "./intents";
import { manifestObjectKey } from "./keys";
import { immutableTagsIn, immutableTagsPolicyIn, type PolicyDefaults } from "./policies";
import { capValues, usageOf, usageQuery, withinCaps, type UsageRow } from "./quotas";
import { confirmed, type Databases } from "./session";

/** What HEAD needs: no bytes. */
export interface ManifestHead {
  digest: Digest;
  mediaType: string;
  size: number;
}

export interface ManifestWithBody extends ManifestHead {
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>;
}

export interface NewManifest {
  digest: Digest;
  bytes: Uint8Array;
  parsed: ParsedManifest;
}

// Manifests up to this size live in their D1 row (rows hold 2 MB with the rest of the row); larger ones in R2.
const INLINE_BYTES = 950_000;

/** A tag that keeps its digest, and the policy that says so (null: the IMMUTABLE_TAGS default). */
export interface ImmutableTag {
  tag: Tag;
  digest: Digest;
  policy: string | null;
}

/**
 * What a PUT came to: the manifest stored, or refused for the digests its
 * repository lacks, for tags it would move, or by its namespace's caps (with
 * what the namespace held then).
 */
export type PutResult = { stored: true } | { stored: false; missing: Digest[] } | { stored: false; immutable: ImmutableTag[] } | { stored: false; refused: Usage };

/** What a DELETE came to: nothing there, or refused for immutable tags it would remove. */
export type DeleteResult = "deleted" | "unknown" | { immutable: ImmutableTag[] };

// Over ?1 repository, ?2 manifest digest, ?3 and ?4 the blobs and manifests it references (JSON arrays).
const MISSING = `SELECT value AS digest FROM json_each(?3) WHERE NOT EXISTS (SELECT 1 FROM repository_blobs WHERE repository = ?1 AND digest = value)
  UNION SELECT value FROM json_each(?4) WHERE NOT EXISTS (SELECT 1 FROM manifests WHERE repository = ?1 AND digest = value)`;
const STORED = "EXISTS (SELECT 1 FROM manifests WHERE repository = ?1 AND digest = ?2)";

/**
 * SQL, true when a tag of repository ?1 among those of the JSON array in
 * parameter `tags` points at a digest other than ?2 in a namespace (parameter
 * `namespace`) where tags are immutable (the default in parameter `fallback`).
 */
function movesImmutableTag(tags: string, namespace: string, fallback: string): string {
  return `(EXISTS (SELECT 1 FROM tags WHERE repository = ?1 AND name IN (SELECT value FROM json_each(${tags})) AND digest <> ?2)
    AND ${immutableTagsIn(namespace, fallback)})`;
}

type HeadRow = { digest: Digest; media_type: string; size: number };
type BodyRow = HeadRow & { content: string | null; object_key: string | null };

const HEAD_COLUMNS = "m.digest, m.media_type, m.size";
// Kept and read as text (ParsedManifest.text), which encodes back to the bytes: D1 carries a BLOB as a JSON array of
// numbers, several bytes of JSON per byte to write and parse. CAST, for rows that hold the bytes as a BLOB.
const BODY_COLUMNS = `${HEAD_COLUMNS}, CAST(m.content AS TEXT) AS content, m.object_key`;

/** Manifests by repository and digest, reached directly or through a tag; one not found is looked for on the primary too. */
export class ManifestStore {
  constructor(
    private readonly databases: Databases,
    private readonly bucket: R2Bucket,
  ) {}

  private get db(): Database {
    return this.databases.db;
  }

  async head(repository: RepositoryName, reference: Reference): Promise<ManifestHead | null> {
    const row = await this.#find<HeadRow>(HEAD_COLUMNS, repository, reference);
    return row && { digest: row.digest, mediaType: row.media_type, size: row.size };
  }

  async get(repository: RepositoryName, reference: Reference): Promise<ManifestWithBody | null> {
    const row = await this.#find<BodyRow>(BODY_COLUMNS, repository, reference);
    if (!row) return null;
    const head = { digest: row.digest, mediaType: row.media_type, size: row.size };
    // TextEncoder's result is always backed by a fresh ArrayBuffer; its type says only ArrayBufferLike.
    if (row.content !== null) return { ...head, body: new TextEncoder().encode(row.content) as Uint8Array<ArrayBuffer> };
    const object = await this.bucket.get(row.object_key!);
    if (!object) throw new Error(`manifest ${row.digest} is missing from R2 at ${row.object_key}`);
    return { ...head, body: object.body };
  }

  #find<Row>(columns: string, repository: RepositoryName, reference: Reference): Promise<Row | null> {
    return confirmed(this.databases, (db) => {
      const statement =
        reference.kind === "tag"
          ? db
              .prepare(
                `SELECT ${columns} FROM tags t JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
                 WHERE t.repository = ?1 AND t.name = ?2`,
              )
              .bind(repository, reference.tag)
          : db.prepare(`SELECT ${columns} FROM manifests m WHERE m.repository = ?1 AND m.digest = ?2`).bind(repository, reference.digest);
      return statement.first<Row>();
    });
  }

  /**
   * Stores the manifest (bytes as pushed) and points the tags at it, unless it
   * references blobs or manifests the repository does not hold and is not
   * `sparse`, would move a tag that its namespace's policies make immutable,
   * or would take its namespace past `caps`: then nothing is written, and the
   * missing digests, the tags held or the namespace's usage come back (a
   * manifest the repository already stores is only tagged).
   * One transaction checks and writes, so neither a blob DELETE nor another
   * PUT of the same tag can land between them.
   */
  async put(
    repository: RepositoryName,
    manifest: NewManifest,
    tags: Tag[],
    { sparse, defaults, caps }: { sparse: boolean; defaults: PolicyDefaults; caps?: QuotaCaps },
  ): Promise<PutResult> {
    const { digest, bytes, parsed } = manifest;
    const inline = bytes.length <= INLINE_BYTES;
    const now = Date.now();
    // A key of its own, named as a write intent before the object and the object before the row that points at it:
    // an object the batch does not point at (a refused or repeated PUT, a crash) keeps its intent, for garbage collection.
    const objectKey = inline ? null : manifestObjectKey(digest, crypto.randomUUID());
    if (objectKey) {
      await recordIntent(this.db, objectKey, now + REQUEST_INTENT_MARGIN_MS).run();
      await this.bucket.put(objectKey, bytes);
    }
    const references = [repository, digest, JSON.stringify(parsed.blobs), JSON.stringify(parsed.manifests)];
    const tagRules = [JSON.stringify(tags), namespaceOf(repository), defaults.immutableTags ? 1 : 0];
    const within = withinCaps({ repository: "?1", namespace: "?15", size: "?6", maxStorageBytes: "?17", maxRepositories: "?18" });
    const results = await this.db.batch<{ digest: Digest } & ImmutableTag & UsageRow & { stored: number }>([
      this.db
        .prepare(
          `INSERT INTO manifests (repository, digest, media_type, size, content, object_key, subject, artifact_type, descriptor, created_at)
           SELECT ?1, ?2, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 WHERE (?13 OR NOT EXISTS (${MISSING})) AND NOT ${movesImmutableTag("?14", "?15", "?16")} AND ${within}
           ON CONFLICT DO NOTHING`,
        )
        .bind(
          ...references,
          parsed.mediaType,
          bytes.length,
          inline ? parsed.text : null,
          objectKey,
          parsed.subject ?? null,
          parsed.artifactType ?? null,
          referrerDescriptor(digest, bytes.length, parsed),
          now,
          sparse ? 1 : 0,
          ...tagRules,
          ...capValues(caps),
        ),
      // Each write from here on happens only if the manifest is stored.
      this.db
        .prepare(
          `INSERT INTO manifest_references (repository, manifest_digest, target_digest, target_kind)
           SELECT ?1, ?2, value, 'blob' FROM json_each(?3) WHERE ${STORED}
           UNION SELECT ?1, ?2, value, 'manifest' FROM json_each(?4) WHERE ${STORED}
           ON CONFLICT DO NOTHING`,
        )
        .bind(...references),
      this.db.prepare(`INSERT INTO repositories (name, created_at) SELECT ?1, ?3 WHERE ${STORED} ON CONFLICT DO NOTHING`).bind(repository, digest, now),
      // All the tags or none: whether one would move is asked before any is written.
      this.db
        .prepare(
          `INSERT INTO tags (repository, name, digest, updated_at) SELECT ?1, value, ?2, ?6 FROM json_each(?3) WHERE ${STORED} AND NOT ${movesImmutableTag("?3", "?4", "?5")}
           ON CONFLICT (repository, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
        )
        .bind(repository, digest, ...tagRules, now),
      this.db.prepare(`SELECT digest FROM (${MISSING}) WHERE NOT ${STORED}`).bind(...references),
      // Empty once the tags point at this manifest: what is left are the tags held elsewhere.
      this.db
        .prepare(
          `SELECT name AS tag, digest, ${immutableTagsPolicyIn("?4")} AS policy FROM tags
           WHERE repository = ?1 AND name IN (SELECT value FROM json_each(?3)) AND digest <> ?2 AND ${immutableTagsIn("?4", "?5")}`,
        )
        .bind(repository, digest, ...tagRules),
      this.db.prepare(`SELECT ${STORED} AS stored, u.* FROM (${usageQuery({ repository: "?1", namespace: "?3" })}) u`).bind(repository, digest, namespaceOf(repository)),
      // Last, so the results above keep their places; only for a manifest stored in R2.
      ...(objectKey ? [clearManifestIntent(this.db, objectKey, repository, digest)] : []),
    ]);
    const immutable: ImmutableTag[] = results[5]!.results;
    if (immutable.length > 0) return { stored: false, immutable };
    const missing = results[4]!.results.map((r) => r.digest);
    if (missing.length > 0) return { stored: false, missing };
    const outcome = results[6]!.results[0]!;
    return outcome.stored ? { stored: true } : { stored: false, refused: usageOf(outcome) };
  }

  /** Deletes a tag, unless its namespace's policies make tags immutable: deleting and pushing again would move it. */
  async deleteTag(repository: RepositoryName, tag: Tag, defaults: PolicyDefaults): Promise<DeleteResult> {
    const [deleted, held] = await this.db.batch<ImmutableTag>([
      this.db.prepare(`DELETE FROM tags WHERE repository = ?1 AND name = ?2 AND NOT ${immutableTagsIn("?3", "?4")}`).bind(repository, tag, namespaceOf(repository), defaults.immutableTags ? 1 : 0),
      this.db.prepare(`SELECT name AS tag, digest, ${immutableTagsPolicyIn("?3")} AS policy FROM tags WHERE repository = ?1 AND name = ?2`).bind(repository, tag, namespaceOf(repository)),
    ]);
    if (deleted!.meta.changes > 0) return "deleted";
    return held!.results.length > 0 ? { immutable: held!.results } : "unknown";
  }

  /**
   * Deletes a manifest with its tags; as a referrer it disappears with its
   * row. A tagged manifest where tags are immutable stays, with its tags.
   */
  async delete(repository: RepositoryName, digest: Digest, defaults: PolicyDefaults): Promise<DeleteResult> {
    const rules = [repository, digest, namespaceOf(repository), defaults.immutableTags ? 1 : 0];
    const held = `(EXISTS (SELECT 1 FROM tags WHERE repository = ?1 AND digest = ?2) AND ${immutableTagsIn("?3", "?4")})`;
    const results = await this.db.batch<ImmutableTag>([
      this.db.prepare(`DELETE FROM manifest_references WHERE repository = ?1 AND manifest_digest = ?2 AND NOT ${held}`).bind(...rules),
      // Before the row goes: its R2 object, unless another row shares it, becomes garbage collection's to free.
      this.db
        .prepare(
          `INSERT INTO object_intents (object_key, expires_at)
           SELECT m.object_key, ?5 FROM manifests m WHERE m.repository = ?1 AND m.digest = ?2 AND m.object_key IS NOT NULL AND NOT ${held}
             AND NOT EXISTS (SELECT 1 FROM manifests o WHERE o.object_key = m.object_key AND (o.repository <> ?1 OR o.digest <> ?2))
           ON CONFLICT DO NOTHING`,
        )
        .bind(...rules, Date.now()),
      this.db.prepare(`DELETE FROM manifests WHERE repository = ?1 AND digest = ?2 AND NOT ${held}`).bind(...rules),
      this.db.prepare(`DELETE FROM tags WHERE repository = ?1 AND digest = ?2 AND NOT ${STORED}`).bind(repository, digest),
      // Left only when the manifest stayed: enough of its tags to name them, the tags list has the rest.
      this.db
        .prepare(`SELECT name AS tag, digest, ${immutableTagsPolicyIn("?3")} AS policy FROM tags WHERE repository = ?1 AND digest = ?2 ORDER BY name LIMIT 10`)
        .bind(repository, digest, namespaceOf(repository)),
    ]);
    if (results[2]!.meta.changes > 0) return "deleted";
    return results[4]!.results.length > 0 ? { immutable: results[4]!.results } : "unknown";
  }
}

