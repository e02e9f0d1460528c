import { Memo } from "../memo";
import { hmacSha256 } from "./hmac";
import { hexOf, parseDigest, toHex, type Digest } from "../oci/digest";
import { secretsEqual } from "./passwords";

/*
 * A download link carries its own authorization: the registry checked the
 * caller before it signed the link, so the link's final hop needs no
 * credentials and no database. An HMAC-SHA256, keyed by the secret
 * DOWNLOAD_SECRET, covers every part of the link that decides what is served
 * and to whom: the digest, the file name, the R2 key and size of the bytes,
 * their time of creation, whether anyone may pull them, and the expiry.
 *
 *   /downloads/<digest>/<file name>?key=<R2 key>&size=<bytes>&created=<unix s>
 *     &expires=<unix s>&public=0|1&signature=<hex>
 */

/** What a link grants: one blob's bytes, until it expires. */
export interface DownloadGrant {
  digest: Digest;
  /** The name the bytes are saved under (Content-Disposition). */
  filename: string;
  objectKey: string;
  size: number;
  /** When the blob was created, in unix seconds: its Last-Modified. */
  created: number;
  /** When the link stops working, in unix seconds. */
  expires: number;
  /** Whether anyone may pull the blob: shared caches may keep it. */
  public: boolean;
}

/** Why a link is refused, said to the client as is: nothing in it hints at the secret. */
export type DownloadRefusal = "incomplete" | "forged" | "expired";

const FILENAME = /^[A-Za-z0-9._-]{1,300}$/;
// R2 keys the registry writes are printable ASCII; a newline could never be signed unambiguously.
const OBJECT_KEY = /^[\x21-\x7e]{1,1024}$/;
const WHOLE = /^(?:0|[1-9][0-9]{0,15})$/;
const SIGNATURE = /^[0-9a-f]{64}$/;

/** The secret DOWNLOAD_SECRET, or an error that names it: a registry that redirects needs it. */
export function downloadSecret(secret: string | undefined): string {
  if (!secret) throw new Error("the secret DOWNLOAD_SECRET is not set (wrangler secret put DOWNLOAD_SECRET)");
  return secret;
}

/** A file name for a blob: the repository's last segment and the digest's first hex, e.g. `app-3f2a9c01d4e5`. */
export function downloadFilename(repository: string, digest: Digest): string {
  const segment = repository.slice(repository.lastIndexOf("/") + 1).replace(/[^A-Za-z0-9._-]/g, "_") || "blob";
  return `${segment}-${hexOf(digest).slice(0, 12)}`;
}

/**
 * When a link signed at `now` (milliseconds) for `ttlSeconds` expires, in unix
 * seconds: `ttlSeconds` later, rounded down to a tenth of it. A blob pulled
 * again and again within that tenth gets the same link, signed once (see
 * macOf). The link never outlives `ttlSeconds`, and lives at least nine tenths of it.
 */
export function linkExpiry(now: number, ttlSeconds: number): number {
  const step = Math.max(1, Math.floor(ttlSeconds / 10));
  return Math.floor((Math.floor(now / 1000) + ttlSeconds) / step) * step;
}

/** The path and query of a signed link (relative to the registry's origin). */
export async function signDownload(secret: string, grant: DownloadGrant): Promise<string> {
  const signature = (await macOf(secret, grant)).remember();
  // Only the key needs escaping: the other values are digits and hex, which every hop of a redirect sends as they are.
  const query = `key=${encodeURIComponent(grant.objectKey)}&size=${grant.size}&created=${grant.created}&expires=${grant.expires}&public=${grant.public ? 1 : 0}`;
  return `/downloads/${grant.digest}/${grant.filename}?${query}&signature=${signature}`;
}

/** What a link grants, or why it is refused; `now` in unix seconds. */
export async function verifyDownload(
  secret: string,
  digest: string,
  filename: string,
  query: URLSearchParams,
  now: number,
): Promise<DownloadGrant | DownloadRefusal> {
  const [objectKey, size, created, expires, shared, signature] = ["key", "size", "created", "expires", "public", "signature"].map((name) => query.get(name));
  if (!objectKey || !size || !created || !expires || !shared || !signature) return "incomplete";
  let parsed: Digest;
  try {
    parsed = parseDigest(digest);
  } catch {
    return "forged";
  }
  const wellFormed =
    FILENAME.test(filename) && OBJECT_KEY.test(objectKey) && [size, created, expires].every((n) => WHOLE.test(n)) && /^[01]$/.test(shared) && SIGNATURE.test(signature);
  if (!wellFormed) return "forged";
  const grant: DownloadGrant = {
    digest: parsed,
    filename,
    objectKey,
    size: Number(size),
    created: Number(created),
    expires: Number(expires),
    public: shared === "1",
  };
  const expected = await macOf(secret, grant);
  if (!(await secretsEqual(expected.mac, signature))) return "forged";
  expected.remember();
  // Checked once the signature holds, so a forged expiry is reported as forged.
  return now > grant.expires ? "expired" : grant;
}

// Each entry lives until its link expires. The redirect and the final hop of a hot blob both find its MAC here.
// Only MACs the registry signed, or that a presented signature matched, are kept: anyone may send the final hop forged links.
const macs = new Memo<string>(Infinity);

async function macOf(secret: string, grant: DownloadGrant): Promise<{ mac: string; remember(): string }> {
  // One field a line: none can hold a newline, so no two grants sign the same text.
  const fields = [grant.digest, grant.filename, grant.objectKey, grant.size, grant.created, grant.expires, grant.public ? 1 : 0];
  const text = `download\n${fields.join("\n")}`;
  const key = `${secret}\n${text}`;
  const known = macs.get(key);
  const mac = known ?? toHex(await hmacSha256(secret, text));
  return {
    mac,
    remember() {
      if (known === undefined) macs.set(key, mac, grant.expires * 1000);
      return mac;
    },
  };
}
