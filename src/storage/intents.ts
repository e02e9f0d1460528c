import type { Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";
import type { Database } from "./database";

/*
 * Write intents (migrations/0005_object_intents.sql): every R2 key the
 * registry writes is named in D1, with an expiry, before its first byte, and
 * the row goes in the batch that makes a `blobs` or `manifests` row point at
 * the key. Whatever a crash between R2 and D1 leaves is thus named here, and
 * garbage collection clears it once expired, never listing the bucket.
 */

/** How long past its upload's expiry an upload's key stays the session's to clean up, before garbage collection may. */
export const UPLOAD_INTENT_MARGIN_MS = 60 * 60 * 1000;

/**
 * How long a key that one request writes (a monolithic push, a large
 * manifest) stays reserved: the request records it well before then. A
 * monolithic push streams as slowly as its client sends (Workers bound CPU
 * time, not wall time), so this is generous rather than a few seconds.
 */
export const REQUEST_INTENT_MARGIN_MS = 60 * 60 * 1000;

/** Names `key` as about to be written, until `expiresAt` (a later expiry of the same key wins). */
export function recordIntent(db: Database, key: string, expiresAt: number): D1PreparedStatement {
  return db
    .prepare("INSERT INTO object_intents (object_key, expires_at) VALUES (?1, ?2) ON CONFLICT (object_key) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)")
    .bind(key, expiresAt);
}

/** Clears `key`'s intent if the blob `digest` is stored there (a duplicate copy keeps it, for GC should its deletion not happen). */
export function clearBlobIntent(db: Database, key: string, digest: Digest): D1PreparedStatement {
  return db
    .prepare("DELETE FROM object_intents WHERE object_key = ?1 AND EXISTS (SELECT 1 FROM blobs WHERE digest = ?2 AND object_key = ?1)")
    .bind(key, digest);
}

/** Clears `key`'s intent if the repository's manifest `digest` is stored there (a refused or repeated PUT's copy keeps it). */
export function clearManifestIntent(db: Database, key: string, repository: RepositoryName, digest: Digest): D1PreparedStatement {
  return db
    .prepare("DELETE FROM object_intents WHERE object_key = ?1 AND EXISTS (SELECT 1 FROM manifests WHERE repository = ?2 AND digest = ?3 AND object_key = ?1)")
    .bind(key, repository, digest);
}

/** Drops the intents of keys whose objects the writer itself deleted; a key that D1 points at is never among them. */
export function forgetIntents(db: Database, keys: string[]): D1PreparedStatement {
  return db.prepare("DELETE FROM object_intents WHERE object_key IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(keys));
}
