-- Each subject's referrers list in a repository has a version, as each tag
-- list has (0009): it changes whenever a manifest with that subject is stored
-- or deleted (a manifest's row never changes once stored), so an isolate that
-- remembers a page of referrers asks D1 only whether its version is current.
CREATE TABLE referrer_lists (
  repository TEXT NOT NULL,
  subject TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (repository, subject)
) WITHOUT ROWID;

INSERT INTO referrer_lists (repository, subject, version)
  SELECT repository, subject, random() >> 11 FROM (SELECT DISTINCT repository, subject FROM manifests WHERE subject IS NOT NULL);

CREATE TRIGGER referrer_lists_referrer_added AFTER INSERT ON manifests WHEN NEW.subject IS NOT NULL BEGIN
  INSERT INTO referrer_lists (repository, subject, version) VALUES (NEW.repository, NEW.subject, random() >> 11)
    ON CONFLICT (repository, subject) DO UPDATE SET version = excluded.version;
END;

CREATE TRIGGER referrer_lists_referrer_removed AFTER DELETE ON manifests WHEN OLD.subject IS NOT NULL BEGIN
  UPDATE referrer_lists SET version = random() >> 11 WHERE repository = OLD.repository AND subject = OLD.subject;
END;
