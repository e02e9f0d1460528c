import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import type { AuthSettings } from "../auth/access";
import type { Action } from "../auth/scopes";
import { DEFAULT_ALGORITHM, parseDigest, type Digest } from "../oci/digest";
import { RegistryError } from "../oci/errors";
import { parseReference, parseRepositoryName, type Reference, type RepositoryName } from "../oci/names";
import { uploadRange } from "../oci/range";
import type { Meter } from "../storage/meter";
import type { Upload } from "../storage/uploads";

/**
 * A route's <name>: any characters, even none, so that an empty or malformed
 * name reaches repositoryOf and gets NAME_INVALID instead of missing every
 * route. A digest or reference after it is optional for the same reason.
 */
export const NAME = ":name{.*}";

/** What authentication needs of a request: the mode, the secrets, and who and where it comes from. */
export function authSettingsOf(c: Context<AppEnv>): AuthSettings {
  return {
    mode: c.get("config").AUTH_MODE,
    store: c.get("storage").access,
    tokenKeys: c.env.TOKEN_KEYS,
    admin: { username: c.env.ADMIN_USERNAME, password: c.env.ADMIN_PASSWORD },
    audience: audienceOf(originOf(c)),
    client: c.req.header("CF-Connecting-IP") ?? "unknown",
  };
}

/** Who issues and receives the registry's tokens: its origin, and the host in it. */
function audienceOf(origin: string): AuthSettings["audience"] {
  return { issuer: origin, service: origin.slice(origin.indexOf("//") + 2) };
}

/** The origin of a request's URL, which the runtime hands over serialized (scheme://host[:port]/path): no URL parse needed. */
export function originOf(c: Context<AppEnv>): string {
  const url = c.req.url;
  return url.slice(0, url.indexOf("/", url.indexOf("//") + 2));
}

export type ResponseHeader = readonly [name: string, value: string];

/**
 * Adds headers to the response a route or onError has made. By then Hono's
 * c.header copies the whole Response for each header; these are set on it in
 * place. Every response here is one the registry built, whose headers may
 * change (one straight from fetch or the cache would not allow it).
 */
export function addResponseHeaders(c: Context<AppEnv>, headers: readonly ResponseHeader[]): void {
  const target = c.res.headers;
  // Cookies are never folded into one header.
  for (const [name, value] of headers) if (name === "Set-Cookie") target.append(name, value);
  else target.set(name, value);
}

/** A route's guard: the caller must be allowed `actions` on the repository in its path. */
export function requires(...actions: Action[]): MiddlewareHandler<AppEnv> {
  return async function guard(c, next) {
    await c.get("access").require(repositoryOf(c), actions);
    await next();
  };
}

export function repositoryOf(c: Context<AppEnv>): RepositoryName {
  return parseRepositoryName(c.req.param("name") ?? "");
}

export function digestOf(c: Context<AppEnv>): Digest {
  return parseDigest(c.req.param("digest") ?? "");
}

export function referenceOf(c: Context<AppEnv>): Reference {
  return parseReference(c.req.param("reference") ?? "");
}

export function blobLocation(repository: RepositoryName, digest: Digest): string {
  return `/v2/${repository}/blobs/${digest}`;
}

export function manifestLocation(repository: RepositoryName, digest: Digest): string {
  return `/v2/${repository}/manifests/${digest}`;
}

/**
 * Every upload response carries where to send the next request and how much
 * has arrived. A non-default algorithm rides in the Location, so the request
 * that begins the session knows what to hash with.
 */
export function uploadHeaders(upload: Upload, size: number): Record<string, string> {
  const { repository, algorithm } = upload.target;
  const query = algorithm === DEFAULT_ALGORITHM ? "" : `?digest-algorithm=${algorithm}`;
  return {
    Location: `/v2/${repository}/blobs/uploads/${upload.id}${query}`,
    Range: uploadRange(size),
    "Docker-Upload-UUID": upload.id,
    "Content-Length": "0",
  };
}

/**
 * The request body, or null as soon as it announces or brings more than
 * `limit` bytes; 400 if it breaks off. What it read is counted on `meter`.
 */
export async function readBounded(request: Request, limit: number, meter: Meter): Promise<Uint8Array | null> {
  const declared = Number(request.headers.get("Content-Length") ?? 0);
  if (declared > limit) return null;
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for await (const chunk of request.body) {
      length += chunk.length;
      meter.count("bytesIn", chunk.length);
      if (length > limit) return null;
      chunks.push(chunk);
    }
  } catch {
    // The client's fault: its connection dropped, or its chunked encoding was malformed.
    throw new RegistryError("SIZE_INVALID", `the body broke off after ${length} bytes`);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}
