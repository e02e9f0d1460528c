import type { D1Migration } from "@cloudflare/vitest-pool-workers";
import type { Env as RegistryEnv } from "../../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends RegistryEnv {
      TEST_MIGRATIONS: D1Migration[];
      /** A second database, for tests that bring an old schema up to date. */
      UPGRADE_DB: D1Database;
    }
  }
}
