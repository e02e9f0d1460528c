import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { MAX_NAMES_PAGE } from "../oci/limits";
import { parseRepositoryName } from "../oci/names";
import { nextLink, parsePageRequest } from "../oci/pagination";

/** GET /v2/_catalog: every repository the caller may pull from, in lexical order, paged by `n` and `last`. */
export const catalog = new Hono<AppEnv>();

catalog.get("/_catalog", async (c) => {
  const last = c.req.query("last");
  const page = parsePageRequest(c.req.query("n"), last === undefined || last === "" ? undefined : parseRepositoryName(last), MAX_NAMES_PAGE);
  const { items, more } = await c.get("storage").repositories.list(page, await c.get("access").catalogView());
  if (more) c.header("Link", nextLink(c.req.path, {}, page.limit, items.at(-1)!));
  return c.json({ repositories: items });
});
