import { Memo } from "../memo";
import type { Digest } from "../oci/digest";
import type { ByteRange } from "../oci/range";
import type { RepositoryName } from "../oci/names";
import { namespaceOf } from "../auth/scopes";
import type { QuotaCaps, Usage } from "../oci/quotas";
import type { Database } from "./database";
import { clearBlobIntent, forgetIntents, recordIntent } from "./intents";
import { capValues, usageOf, usageQuery, withinCaps, type UsageRow } from "./quotas";
import { confirmed, type Databases } from "./session";

/** A blob as a repository holds it: its size and where its bytes are. */
export interface StoredBlob {
  digest: Digest;
  size: number;
  objectKey: string;
}

/** A blob a repository holds, with when it was first stored (its Last-Modified). */
export interface BlobStat extends StoredBlob {
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/**
 * What recording a blob came to: the key that holds its bytes (an earlier
 * copy wins), or what the namespace held when its caps refused it, with the
 * key D1 holds for the digest all the same (a copy recorded before), if any.
 */
export type Registration = { stored: string } | { refused: Usage; recordedKey: string | null };

/** What a blob DELETE came to: unlinked, not held by the repository, or kept for a manifest that references it. */
export type Unlink = { result: "unlinked" } | { result: "not-held" } | { result: "referenced"; manifest: Digest };

// A manifest of repository ?1 that references blob ?2.
const REFERENCING = "SELECT manifest_digest FROM manifest_references WHERE repository = ?1 AND target_digest = ?2 AND target_kind = 'blob' LIMIT 1";

// Whether repository ?1 holds blob ?2.
const LINKED = "EXISTS (SELECT 1 FROM repository_blobs WHERE repository = ?1 AND digest = ?2)";

// A link made again is dated anew, so that garbage collection does not sweep a link a push or mount just made (migrations/0006_gc.sql).
const RELINKED = "ON CONFLICT (repository, digest) DO UPDATE SET created_at = excluded.created_at";

/**
 * Blobs this isolate found in a repository lately, by repository and digest:
 * a hot blob's GET or HEAD reads no D1. What a digest names never changes;
 * only the repository's link to it can go, and a DELETE or garbage
 * collection forgets it here at once. Module state, shared by every request
 * the isolate serves.
 */
const found = new Memo<BlobStat>(Infinity);

/** Blobs: bytes in R2, shared by digest; which repositories hold them, in D1. */
export class BlobStore {
  /**
   * @param memorySeconds how long a blob `stat` found is remembered (0: not
   *   at all): the longest another isolate may still serve a blob a DELETE
   *   took from the repository. Never longer than garbage collection's
   *   grace, so the bytes a remembered blob names are still in R2.
   */
  constructor(
    private readonly databases: Databases,
    private readonly bucket: R2Bucket,
    private readonly memorySeconds = 0,
  ) {}

  private get db(): Database {
    return this.databases.db;
  }

  /** The blob if this repository holds it (looked for on the primary too before saying it does not), for a GET or HEAD to serve. */
  async stat(repository: RepositoryName, digest: Digest): Promise<BlobStat | null> {
    const key = foundKey(repository, digest);
    const remembered = found.get(key);
    if (remembered) return remembered;
    const row = await confirmed(this.databases, (db) =>
      db
        .prepare(
          `SELECT b.size, b.object_key, b.created_at FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
           WHERE rb.repository = ?1 AND rb.digest = ?2`,
        )
        .bind(repository, digest)
        .first<{ size: number; object_key: string; created_at: number }>(),
    );
    if (!row) return null;
    const stat = { digest, size: row.size, objectKey: row.object_key, createdAt: row.created_at };
    if (this.memorySeconds > 0) found.set(key, stat, Date.now() + this.memorySeconds * 1000);
    return stat;
  }

  async read(blob: StoredBlob, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const object = await this.bucket.get(blob.objectKey, range ? { range } : {});
    // D1 says the blob exists, so a missing object is the server's fault, not the client's.
    if (!object) throw new Error(`object ${blob.objectKey} of ${blob.digest} is missing from R2`);
    return object.body;
  }

  /**
   * Makes an existing blob part of a repository without moving bytes: a blob
   * `from` holds, or, without `from`, one any repository holds, and of at
   * most `maxBytes` (the room the namespace's quotas leave), within `caps`.
   * Returns false when there is nothing to mount.
   */
  async mount(repository: RepositoryName, digest: Digest, from?: RepositoryName, maxBytes?: number, caps?: QuotaCaps): Promise<boolean> {
    const size = "(SELECT size FROM blobs WHERE digest = ?2)";
    const held = `SELECT 1 FROM repository_blobs WHERE digest = ?2 AND (?4 IS NULL OR repository = ?4) AND (?5 IS NULL OR ${size} <= ?5)
      AND (${LINKED} OR ${withinCaps({ repository: "?1", namespace: "?6", size, maxStorageBytes: "?7", maxRepositories: "?8" })})`;
    const params = [repository, digest, Date.now(), from ?? null, maxBytes ?? null, namespaceOf(repository), ...capValues(caps)];
    const [, , linked] = await this.db.batch([
      this.db.prepare(`INSERT INTO repositories (name, created_at) SELECT ?1, ?3 WHERE EXISTS (${held}) ON CONFLICT DO NOTHING`).bind(...params),
      this.db.prepare(`INSERT INTO repository_blobs (repository, digest, created_at) SELECT ?1, ?2, ?3 WHERE EXISTS (${held}) ${RELINKED}`).bind(...params),
      this.db.prepare(`SELECT 1 AS held WHERE ${LINKED}`).bind(repository, digest),
    ]);
    return (linked?.results.length ?? 0) > 0;
  }

  /**
   * Records a verified blob for a repository, unless a blob new to it would
   * take its namespace past `caps`: then nothing is written. Clears the key's
   * write intent if the blob is stored there.
   */
  async register(repository: RepositoryName, blob: StoredBlob, caps?: QuotaCaps): Promise<Registration> {
    const now = Date.now();
    const allowed = `(${LINKED} OR ${withinCaps({ repository: "?1", namespace: "?6", size: "?4", maxStorageBytes: "?7", maxRepositories: "?8" })})`;
    const params = [repository, blob.digest, now, blob.size, blob.objectKey, namespaceOf(repository), ...capValues(caps)];
    const results = await this.db.batch<{ object_key: string | null; linked: number } & UsageRow>([
      this.db.prepare(`INSERT INTO blobs (digest, size, object_key, created_at) SELECT ?2, ?4, ?5, ?3 WHERE ${allowed} ON CONFLICT DO NOTHING`).bind(...params),
      clearBlobIntent(this.db, blob.objectKey, blob.digest),
      this.db.prepare(`INSERT INTO repositories (name, created_at) SELECT ?1, ?3 WHERE ${allowed} ON CONFLICT DO NOTHING`).bind(...params),
      // Last of the writes: it is what adds the bytes to the usage the others read.
      this.db.prepare(`INSERT INTO repository_blobs (repository, digest, created_at) SELECT ?1, ?2, ?3 WHERE ${allowed} ${RELINKED}`).bind(...params),
      this.db
        .prepare(`SELECT b.object_key, ${LINKED} AS linked, u.* FROM (${usageQuery({ repository: "?1", namespace: "?3" })}) u LEFT JOIN blobs b ON b.digest = ?2`)
        .bind(repository, blob.digest, namespaceOf(repository)),
    ]);
    const row = results[4]!.results[0]!;
    return row.linked && row.object_key ? { stored: row.object_key } : { refused: usageOf(row), recordedKey: row.object_key };
  }

  /** Names `key` in D1 as about to be written, until `expiresAt`: run before its first byte goes to R2. */
  async recordIntent(key: string, expiresAt: number): Promise<void> {
    await recordIntent(this.db, key, expiresAt).run();
  }

  /** Forgets the intents of keys whose objects their writer deleted. */
  async forgetIntents(keys: string[]): Promise<void> {
    await forgetIntents(this.db, keys).run();
  }

  /** The R2 key that D1 says holds the digest's bytes, if any. */
  async objectKeyOf(digest: Digest): Promise<string | null> {
    return this.db.prepare("SELECT object_key FROM blobs WHERE digest = ?1").bind(digest).first<string>("object_key");
  }

  /**
   * Removes the blob from the repository unless a manifest there references
   * it; the bytes stay for other holders. The check is part of the DELETE, so
   * no manifest PUT can slip in between, and the state it reports is the one
   * the DELETE saw.
   */
  async unlink(repository: RepositoryName, digest: Digest): Promise<Unlink> {
    const [deleted, state] = await this.db.batch<{ held: number; manifest: Digest | null }>([
      this.db.prepare(`DELETE FROM repository_blobs WHERE repository = ?1 AND digest = ?2 AND NOT EXISTS (${REFERENCING})`).bind(repository, digest),
      this.db
        .prepare(`SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE repository = ?1 AND digest = ?2) AS held, (${REFERENCING}) AS manifest`)
        .bind(repository, digest),
    ]);
    // After D1, so no pull here can remember it again.
    forgetFoundBlobs([{ repository, digest }]);
    if (deleted!.meta.changes > 0) return { result: "unlinked" };
    const { held, manifest } = state!.results[0]!;
    return held && manifest ? { result: "referenced", manifest } : { result: "not-held" };
  }
}

/** Forgets blobs their repositories no longer hold (a DELETE or garbage collection took the links), in this isolate. */
export function forgetFoundBlobs(links: readonly { repository: RepositoryName; digest: Digest }[]): void {
  for (const { repository, digest } of links) found.delete(foundKey(repository, digest));
}

function foundKey(repository: RepositoryName, digest: Digest): string {
  return `${repository} ${digest}`;
}
