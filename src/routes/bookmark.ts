import type { Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import type { AppEnv } from "../app-env";

/**
 * The D1 bookmark a client may carry from one request to the next, so its
 * reads see its own writes even on a lagging replica: a response header and
 * a cookie with the same name, read back from either (the header first).
 */
const BOOKMARK = "Registry-Bookmark";

export function presentedBookmark(c: Context<AppEnv>): string | undefined {
  return c.req.header(BOOKMARK) ?? getCookie(c, BOOKMARK);
}

/** Gives the response the latest bookmark the request reached, if it queried D1. */
export function carryBookmark(c: Context<AppEnv>): void {
  const bookmark = c.get("storage").bookmark();
  if (!bookmark) return;
  c.header(BOOKMARK, bookmark);
  setCookie(c, BOOKMARK, bookmark, { path: "/", httpOnly: true, sameSite: "Lax", secure: c.req.url.startsWith("https:") });
}
