-- Every R2 key the registry writes is named here before its first byte is
-- written, so that no crash between R2 and D1 can leave an object that nothing
-- in D1 names: garbage collection finds orphans here and never lists the
-- bucket.
--
-- A writer records its key with an expiry (an upload session's: when it
-- expires, plus a margin), writes the object, and removes the row in the same
-- D1 batch that makes a `blobs` or `manifests` row point at the key. Deleting
-- works the other way round: the batch that removes the last D1 row pointing
-- at a key records it here (expiring at once), and the row goes once the
-- object is deleted. Garbage collection deletes the object of every expired
-- row that no `blobs` or `manifests` row points at, then the row.
--
-- Keys are never reused (an upload's id names its bytes), so an object that
-- garbage collection deletes is never one a later writer is writing.
CREATE TABLE object_intents (
  object_key TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX object_intents_by_expiry ON object_intents (expires_at, object_key);

-- R2 keys by what points at them, for the checks above.
CREATE INDEX blobs_by_object_key ON blobs (object_key);
CREATE INDEX manifests_by_object_key ON manifests (object_key) WHERE object_key IS NOT NULL;
