import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { MAX_NAMES_PAGE } from "../oci/limits";
import { parseRepositoryName } from "../oci/names";
import { nextLink, parsePageRequest } from "../oci/pagination";

/** GET /v2/_catalog: every repository the caller may pull from, in lexical order, paged by `n` and `last`. */
export const catalog = new Hono<AppEnv>();

catalog.get("/_catalog", async (c) => {
  const after = c.req.query("last");
  const page = parsePageRequest(c.req.query("n"), after === undefined || after === "" ? undefined : parseRepositoryName(after), MAX_NAMES_PAGE);
  const { names, last, more } = await c.get("storage").repositories.list(page, await c.get("access").catalogView());
  if (more && last) c.header("Link", nextLink(c.req.path, {}, page.limit, last));
  // The names come as JSON text already.
  return c.body(`{"repositories":${names}}`, 200, { "Content-Type": "application/json" });
});
