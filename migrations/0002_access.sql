-- Who may do what. Namespaces are the first path component of a repository
-- name; a user owns the namespace of their own name. Grants and robot scopes
-- name namespaces by pattern: letters, digits, '.', '_', '-' and '*' for any
-- run of them (SQLite's GLOB, which the catalog filters with too).

-- Users log in with a password, stored as a salted PBKDF2-SHA256 hash.
-- The bootstrap administrator lives in the Worker's secrets, not here.
CREATE TABLE users (
  name TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- A user's role on the namespaces a pattern matches: pull, push (and pull),
-- delete (and push) or admin (all of them).
CREATE TABLE grants (
  user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
  pattern TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('pull', 'push', 'delete', 'admin')),
  PRIMARY KEY (user, pattern)
) WITHOUT ROWID;

-- Namespaces anyone may pull from, without credentials.
CREATE TABLE public_namespaces (
  name TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Access tokens for CI: a name (the login, beside the users'), the SHA-256 of
-- the token (shown once, at creation), its scopes as a JSON array of
-- {pattern, role}, and when it stops working.
CREATE TABLE robots (
  name TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Failed logins per client and window, to slow down guessing.
CREATE TABLE login_failures (
  client TEXT PRIMARY KEY,
  window_start INTEGER NOT NULL,
  failures INTEGER NOT NULL
) WITHOUT ROWID;
