-- The registry's index. R2 holds bytes; these tables say which bytes exist and
-- who holds them. Every request path reads a handful of rows through a primary
-- key or an index, so a page deep in a listing costs what the first page does.

-- Every repository that has ever received content, for the catalog (and later
-- for per-namespace quotas and grants).
CREATE TABLE repositories (
  name TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per distinct blob, however many repositories hold it. object_key
-- names the R2 object with its bytes: R2 cannot rename or copy, so the bytes
-- stay where their upload wrote them and this row is what addresses them.
CREATE TABLE blobs (
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  object_key TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Which repositories hold which blobs: a push or a mount adds a row, a blob
-- DELETE removes one. The bytes are shared.
CREATE TABLE repository_blobs (
  repository TEXT NOT NULL,
  digest TEXT NOT NULL REFERENCES blobs (digest),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (repository, digest)
) WITHOUT ROWID;
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

-- Manifests, stored as the exact bytes pushed. Small ones live inline in
-- content (one D1 read serves a pull); ones too large for a D1 row live in R2
-- under object_key. subject, artifact_type and annotations make this table the
-- referrers index as well.
CREATE TABLE manifests (
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  content BLOB,
  object_key TEXT,
  subject TEXT,
  artifact_type TEXT,
  annotations TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (repository, digest),
  CHECK ((content IS NULL) <> (object_key IS NULL))
) WITHOUT ROWID;
CREATE INDEX manifests_by_subject ON manifests (repository, subject, digest)
  WHERE subject IS NOT NULL;

-- What each manifest points at: blobs (config, layers) and manifests (index
-- children). Garbage collection marks from here.
CREATE TABLE manifest_references (
  repository TEXT NOT NULL,
  manifest_digest TEXT NOT NULL,
  target_digest TEXT NOT NULL,
  target_kind TEXT NOT NULL CHECK (target_kind IN ('blob', 'manifest')),
  PRIMARY KEY (repository, manifest_digest, target_digest)
) WITHOUT ROWID;
CREATE INDEX manifest_references_by_target ON manifest_references (target_digest);

CREATE TABLE tags (
  repository TEXT NOT NULL,
  name TEXT NOT NULL,
  digest TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (repository, name)
) WITHOUT ROWID;
CREATE INDEX tags_by_digest ON tags (repository, digest);
