-- Each repository's tag list has a version, which changes whenever a tag is
-- added to or removed from the repository (a tag moved to another manifest
-- leaves the list as it was). An isolate that remembers a page of tags asks
-- D1 only whether the version it saw is still the current one: one row read,
-- where listing the page reads a row per tag. Versions are random, so one
-- never comes back; 53 bits, so JavaScript numbers hold them exactly.
CREATE TABLE tag_lists (
  repository TEXT PRIMARY KEY,
  version INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO tag_lists (repository, version) SELECT repository, random() >> 11 FROM (SELECT DISTINCT repository FROM tags);

-- A moved tag is an upsert that updates, which fires no INSERT trigger.
CREATE TRIGGER tag_lists_tag_added AFTER INSERT ON tags BEGIN
  INSERT INTO tag_lists (repository, version) VALUES (NEW.repository, random() >> 11)
    ON CONFLICT (repository) DO UPDATE SET version = excluded.version;
END;

CREATE TRIGGER tag_lists_tag_removed AFTER DELETE ON tags BEGIN
  UPDATE tag_lists SET version = random() >> 11 WHERE repository = OLD.repository;
END;
