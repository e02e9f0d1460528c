import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { parseDigest } from "../oci/digest";
import { MAX_REFERRERS_PAGE, referrersIndex, referrersPageBudget } from "../oci/limits";
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
  const after = c.req.query("last");
  const page = parsePageRequest(c.req.query("n"), after === undefined ? undefined : parseDigest(after), MAX_REFERRERS_PAGE);
  const artifactType = c.req.query("artifactType");
  const { descriptors, last, more } = await c.get("storage").referrers.page(repository, subject, page, referrersPageBudget(c.get("config")), artifactType);
  if (artifactType !== undefined) c.header("OCI-Filters-Applied", "artifactType");
  if (more && last) c.header("Link", nextLink(c.req.path, { artifactType }, page.limit, last));
  return c.body(referrersIndex(descriptors), 200, { "Content-Type": MEDIA_TYPES.ociIndex });
});
