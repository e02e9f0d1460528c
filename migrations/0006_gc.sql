-- Garbage collection (src/lifecycle/gc.ts, SQL in src/storage/gc.ts). It marks
-- from D1, never by listing the bucket: a repository link (repository_blobs)
-- is in use while a manifest of its repository references the blob, a blob
-- while any link holds it. What a mark finds out of use is recorded here with
-- the time it was first found so; the sweep deletes it only once it has stayed
-- so for GC_GRACE_SECONDS, checking again in the transaction that deletes, so
-- a manifest PUT, a mount or an upload between mark and sweep wins. A mark that
-- finds a candidate in use again forgets it.
--
-- repository_blobs.created_at is from now on when the link was last made: a
-- push or a mount of a blob the repository already holds sets it again, and a
-- link candidate whose linked_at no longer matches is not swept.
CREATE TABLE gc_links (
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  seen_at INTEGER NOT NULL,
  linked_at INTEGER NOT NULL,
  PRIMARY KEY (repository, digest)
) WITHOUT ROWID;
CREATE INDEX gc_links_by_age ON gc_links (seen_at);

-- Blobs no repository holds (their last link swept or deleted), by when a mark first found them so.
CREATE TABLE gc_blobs (
  digest TEXT PRIMARY KEY,
  seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX gc_blobs_by_age ON gc_blobs (seen_at);
