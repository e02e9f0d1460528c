import type { Context } from "hono";
import { generateCookie, getCookie } from "hono/cookie";
import type { AppEnv } from "../app-env";
import type { ResponseHeader } from "./http";

/**
 * The D1 bookmark a client may carry from one request to the next, so its
 * reads see its own writes even on a lagging replica: a response header and
 * a cookie with the same name, read back from either (the header first).
 */
const BOOKMARK = "Registry-Bookmark";

export function presentedBookmark(c: Context<AppEnv>): string | undefined {
  return c.req.header(BOOKMARK) ?? getCookie(c, BOOKMARK);
}

/** The response headers that carry the latest bookmark the request reached: none if it queried no D1. */
export function bookmarkHeaders(c: Context<AppEnv>): ResponseHeader[] {
  const bookmark = c.get("storage").bookmark();
  if (!bookmark) return [];
  return [
    [BOOKMARK, bookmark],
    ["Set-Cookie", cookieOf(bookmark, c.req.url.startsWith("https:"))],
  ];
}

/** The last cookie made: the bookmark only moves with writes, so reads answer the same one again and again. */
let lastCookie = { bookmark: "", secure: false, cookie: "" };

function cookieOf(bookmark: string, secure: boolean): string {
  if (lastCookie.bookmark !== bookmark || lastCookie.secure !== secure) {
    lastCookie = { bookmark, secure, cookie: generateCookie(BOOKMARK, bookmark, { path: "/", httpOnly: true, sameSite: "Lax", secure }) };
  }
  return lastCookie.cookie;
}
