-- Quotas: four more settings of a namespace policy, and the storage each
-- repository and namespace uses, kept by triggers.

-- NULL where the policy leaves the setting to the others and to the vars
-- (MAX_BLOB_BYTES, MAX_MANIFEST_BYTES, QUOTA_MAX_STORAGE_BYTES,
-- QUOTA_MAX_REPOSITORIES); 0 means "no limit", a value that can exempt a
-- namespace from a var's default. Where several policies match, the most
-- restrictive applies: the smallest limit any of them sets, "no limit" only
-- when every one that sets it says so. Sizes are in bytes.
ALTER TABLE namespace_policies ADD COLUMN max_blob_bytes INTEGER CHECK (max_blob_bytes >= 0);
ALTER TABLE namespace_policies ADD COLUMN max_manifest_bytes INTEGER CHECK (max_manifest_bytes >= 0);
ALTER TABLE namespace_policies ADD COLUMN max_storage_bytes INTEGER CHECK (max_storage_bytes >= 0);
ALTER TABLE namespace_policies ADD COLUMN max_repositories INTEGER CHECK (max_repositories >= 0);

-- Bytes a repository holds: each blob it links (a blob shared by two
-- repositories counts in both) plus each manifest's size.
CREATE TABLE repository_usage (
  repository TEXT PRIMARY KEY,
  bytes INTEGER NOT NULL
) WITHOUT ROWID;

-- The same summed over a namespace's repositories, and how many it has.
CREATE TABLE namespace_usage (
  namespace TEXT PRIMARY KEY,
  bytes INTEGER NOT NULL,
  repositories INTEGER NOT NULL
) WITHOUT ROWID;

-- Triggers keep both in the transaction of whatever writes the rows they
-- count (a push, a mount, a DELETE, retention, garbage collection), so no
-- writer can forget them. A namespace is a repository name's first component.
CREATE TRIGGER usage_blob_linked AFTER INSERT ON repository_blobs BEGIN
  INSERT INTO repository_usage (repository, bytes) VALUES (NEW.repository, (SELECT size FROM blobs WHERE digest = NEW.digest))
    ON CONFLICT (repository) DO UPDATE SET bytes = bytes + excluded.bytes;
  INSERT INTO namespace_usage (namespace, bytes, repositories)
    VALUES (substr(NEW.repository, 1, instr(NEW.repository || '/', '/') - 1), (SELECT size FROM blobs WHERE digest = NEW.digest), 0)
    ON CONFLICT (namespace) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER usage_blob_unlinked AFTER DELETE ON repository_blobs BEGIN
  UPDATE repository_usage SET bytes = bytes - (SELECT size FROM blobs WHERE digest = OLD.digest) WHERE repository = OLD.repository;
  UPDATE namespace_usage SET bytes = bytes - (SELECT size FROM blobs WHERE digest = OLD.digest)
    WHERE namespace = substr(OLD.repository, 1, instr(OLD.repository || '/', '/') - 1);
END;

CREATE TRIGGER usage_manifest_stored AFTER INSERT ON manifests BEGIN
  INSERT INTO repository_usage (repository, bytes) VALUES (NEW.repository, NEW.size)
    ON CONFLICT (repository) DO UPDATE SET bytes = bytes + excluded.bytes;
  INSERT INTO namespace_usage (namespace, bytes, repositories) VALUES (substr(NEW.repository, 1, instr(NEW.repository || '/', '/') - 1), NEW.size, 0)
    ON CONFLICT (namespace) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER usage_manifest_deleted AFTER DELETE ON manifests BEGIN
  UPDATE repository_usage SET bytes = bytes - OLD.size WHERE repository = OLD.repository;
  UPDATE namespace_usage SET bytes = bytes - OLD.size WHERE namespace = substr(OLD.repository, 1, instr(OLD.repository || '/', '/') - 1);
END;

CREATE TRIGGER usage_repository_created AFTER INSERT ON repositories BEGIN
  INSERT INTO namespace_usage (namespace, bytes, repositories) VALUES (substr(NEW.name, 1, instr(NEW.name || '/', '/') - 1), 0, 1)
    ON CONFLICT (namespace) DO UPDATE SET repositories = repositories + 1;
END;

CREATE TRIGGER usage_repository_deleted AFTER DELETE ON repositories BEGIN
  UPDATE namespace_usage SET repositories = repositories - 1 WHERE namespace = substr(OLD.name, 1, instr(OLD.name || '/', '/') - 1);
END;

-- What the registry already holds.
INSERT INTO repository_usage (repository, bytes)
  SELECT repository, SUM(size) FROM (
    SELECT rb.repository, b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
    UNION ALL SELECT repository, size FROM manifests
  ) GROUP BY repository;
INSERT INTO namespace_usage (namespace, bytes, repositories)
  SELECT substr(r.name, 1, instr(r.name || '/', '/') - 1) AS namespace, SUM(COALESCE(u.bytes, 0)), COUNT(*)
  FROM repositories r LEFT JOIN repository_usage u ON u.repository = r.name GROUP BY namespace;
