import type { Access } from "./auth/access";
import type { Config } from "./config";
import type { Env } from "./env";
import type { Storage } from "./storage";
import type { Meter } from "./storage/meter";

/** The Hono environment every route sees: bindings, and per-request services and settings on c.var. */
export type AppEnv = {
  Bindings: Env;
  Variables: { meter: Meter; storage: Storage; config: Config; access: Access };
};
