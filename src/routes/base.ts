import { Hono } from "hono";
import type { AppEnv } from "../app-env";

/** end-1: the API version check every client starts with. */
export const base = new Hono<AppEnv>();

base.get("/", (c) => {
  c.get("access").requireCredentials();
  return c.json({});
});
