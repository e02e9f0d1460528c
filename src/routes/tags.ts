import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { RegistryError } from "../oci/errors";
import { MAX_NAMES_PAGE } from "../oci/limits";
import { parseTag } from "../oci/names";
import { nextLink, parsePageRequest } from "../oci/pagination";
import { NAME, repositoryOf, requires } from "./http";

/** end-8a/b: GET /v2/<name>/tags/list, in lexical order, paged by `n` and `last`. */
export const tags = new Hono<AppEnv>();

tags.get(`/${NAME}/tags/list`, requires("pull"), async (c) => {
  const repository = repositoryOf(c);
  const after = c.req.query("last");
  const page = parsePageRequest(c.req.query("n"), after === undefined || after === "" ? undefined : parseTag(after), MAX_NAMES_PAGE);
  const listed = await c.get("storage").tags.list(repository, page);
  if (!listed) throw new RegistryError("NAME_UNKNOWN", { name: repository });
  const { names, last, more } = listed;
  if (more && last) c.header("Link", nextLink(c.req.path, {}, page.limit, last));
  // The names come as JSON text already.
  return c.body(`{"name":${JSON.stringify(repository)},"tags":${names}}`, 200, { "Content-Type": "application/json" });
});
