import type { Access } from "./auth/access";
import type { Config } from "./config";
import type { Env } from "./env";
import type { Storage } from "./storage";
import type { Meter } from "./storage/meter";

/**
 * The Hono environment every route sees: bindings, and per-request services
 * and settings, read with c.get (Hono's c.var copies them all into a new
 * object on every read).
 */
export type AppEnv = {
  Bindings: Env;
  Variables: { meter: Meter; storage: Storage; config: Config; access: Access };
};
