import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { parseDigest } from "../oci/digest";
import { MAX_REFERRERS_PAGE, referrersPage } from "../oci/limits";
import { MEDIA_TYPES } from "../oci/media-types";
import { nextLink, parsePageRequest } from "../oci/pagination";
import { digestOf, NAME, repositoryOf, requires } from "./http";

/**
 * end-12a/b: GET /v2/<name>/referrers/<digest>, always an image index, filtered
 * by ?artifactType=, paged by `n` and `last` and cut short of MAX_REFERRERS_PAGE_BYTES.
 */
export const referrers = new Hono<AppEnv>();

referrers.get(`/${NAME}/referrers/:digest?`, requires("pull"), async (c) => {
  const repository = repositoryOf(c);
  const subject = digestOf(c);
  const last = c.req.query("last");
  const page = parsePageRequest(c.req.query("n"), last === undefined ? undefined : parseDigest(last), MAX_REFERRERS_PAGE);
  const artifactType = c.req.query("artifactType");
  const { items, more } = await c.get("storage").referrers.list(repository, subject, page, artifactType);
  if (artifactType !== undefined) c.header("OCI-Filters-Applied", "artifactType");
  const index = referrersPage(items.map((item) => item.descriptor), c.get("config"));
  if (more || index.count < items.length) c.header("Link", nextLink(c.req.path, { artifactType }, page.limit, items[index.count - 1]!.digest));
  return c.body(index.json, 200, { "Content-Type": MEDIA_TYPES.ociIndex });
});
