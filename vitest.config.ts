import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        // The HTTP API, called through SELF.fetch inside workerd with local R2, D1 and Durable Objects.
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { TEST_MIGRATIONS: await readD1Migrations("./migrations"), UPLOAD_SECRET: "test-upload-secret" } },
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
