import { generateKeyPairSync } from "node:crypto";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/** The secrets `npm start` keeps in .dev.vars, made up for the API tests. */
const TEST_SECRETS = {
  UPLOAD_SECRET: "test-upload-secret",
  DOWNLOAD_SECRET: "test-download-secret",
  TOKEN_KEYS: JSON.stringify([generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" })]),
  ADMIN_USERNAME: "root",
  ADMIN_PASSWORD: "test-admin-password",
};

/** The start of the Worker's per-request log line as the console prints it, colours or not. */
const REQUEST_LOG = /^\{\s*event: (?:\x1b\[\d+m)?'request'/;

export default defineConfig({
  test: {
    // Under SELF.fetch every request logs its cost (test/api/cost-meter.test.ts checks the line): kept out of the output.
    onConsoleLog: (log) => !REQUEST_LOG.test(log),
    projects: [
      {
        // The HTTP API, called through SELF.fetch inside workerd with local R2, D1 and Durable Objects.
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            // Most suites test the API itself, with auth off; the access suites turn it on per request. The cost meter's suite reads its header.
            // UPGRADE_DB: a second database, for tests that bring an old schema up to date.
            miniflare: {
              bindings: { TEST_MIGRATIONS: await readD1Migrations("./migrations"), AUTH_MODE: "none", COST_HEADER: "on", ...TEST_SECRETS },
              d1Databases: { UPGRADE_DB: "upgrade-db" },
            },
          })),
        ],
        test: {
          name: "api",
          include: ["test/api/**/*.test.ts"],
          setupFiles: ["./test/api/setup.ts"],
          testTimeout: 60_000,
        },
      },
      {
        // Real clients (skopeo, podman, buildah, docker, ctr) against the registry started as `npm start` starts it.
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          globalSetup: ["./test/e2e/registry-server.ts"],
          testTimeout: 600_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
