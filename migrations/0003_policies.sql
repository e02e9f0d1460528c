-- Settings per namespace pattern, which the administrator sets with
-- `npm run admin -- policy set`. A pattern is written as grants write theirs
-- (name characters and '*', matched with GLOB against a repository's first
-- path component).
--
-- Each setting is a nullable column: NULL means the policy leaves it alone,
-- and the Worker's var of the same name (its default) applies where no
-- matching policy sets it. When several patterns match a namespace, the most
-- restrictive value set among them applies, so that adding a policy can never
-- loosen another one. Further settings (quotas, retention) are further
-- columns, each with its var and its rule of "most restrictive", in
-- src/storage/policies.ts.
CREATE TABLE namespace_policies (
  pattern TEXT PRIMARY KEY,
  -- 1: a tag, once pushed, keeps its digest: pushing it to another digest,
  -- and deleting it, are refused. 0: tags move freely. Most restrictive: 1.
  immutable_tags INTEGER CHECK (immutable_tags IN (0, 1)),
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
