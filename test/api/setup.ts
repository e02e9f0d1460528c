import { applyD1Migrations, env } from "cloudflare:test";

// Idempotent: each test file's first run applies the schema, later ones find it applied.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
