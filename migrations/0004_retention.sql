-- Retention: the scheduled lifecycle pass (src/lifecycle/) deletes, per
-- repository, untagged manifests older than a number of days and tags beyond
-- the newest few that match a pattern, as the namespace policies say. Only D1
-- rows go; blob bytes are garbage collection's to free.

-- Two more settings of a namespace policy, NULL where the policy leaves them to
-- the others and to the vars (RETENTION_UNTAGGED_DAYS, RETENTION_KEEP_TAGS,
-- RETENTION_KEEP_TAGS_MATCHING). 0 means "never delete" and "keep all": a value
-- that can exempt a namespace from a var's default. Where several policies
-- match, the most retentive value applies (0, else the largest), so adding a
-- policy never deletes what another one keeps.
--
-- delete_untagged_after_days: a manifest no tag points at, no index of its
-- repository lists and whose subject (if any) is gone is deleted this many
-- days after its push, with the untagged referrers that have it as subject.
ALTER TABLE namespace_policies ADD COLUMN delete_untagged_after_days INTEGER CHECK (delete_untagged_after_days >= 0);
-- keep_tags: of the tags matching keep_tags_matching (a GLOB over tag names;
-- NULL: the var's pattern), the newest this many by their last push stay and
-- the older ones are deleted; tags not matching are left alone.
ALTER TABLE namespace_policies ADD COLUMN keep_tags INTEGER CHECK (keep_tags >= 0);
ALTER TABLE namespace_policies ADD COLUMN keep_tags_matching TEXT CHECK (keep_tags_matching IS NULL OR keep_tags IS NOT NULL);

-- Where each step of the lifecycle pass stopped (retention: the last
-- repository it finished), so that the next run resumes there.
CREATE TABLE lifecycle_cursors (
  step TEXT PRIMARY KEY,
  position TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The manifests one retention batch deletes. A batch is one transaction that
-- fills this table, deletes what it lists and empties it, so outside a batch
-- it is always empty: it only lets the batch's statements share one choice.
CREATE TABLE retention_doomed (
  digest TEXT PRIMARY KEY
) WITHOUT ROWID;

-- Oldest first, so a batch reads the candidates it deletes rather than the
-- whole repository: untagged manifests by age, tags by their last push.
CREATE INDEX manifests_by_age ON manifests (repository, created_at);
CREATE INDEX tags_by_age ON tags (repository, updated_at, name);
