import { hmacSha256 } from "../auth/hmac";
import { toHex } from "../oci/digest";
import type { RepositoryName } from "../oci/names";

/*
 * An upload id carries its own proof: the session object's id, when the POST
 * issued it, and an HMAC over both and the repository, keyed by the secret
 * UPLOAD_SECRET. So a request that names another repository, a made-up id or
 * an expired one is refused before any storage is read.
 *
 *   <object id: 64 hex><issued at, seconds: 8 hex><HMAC-SHA256, first 16 bytes: 32 hex>
 */

const OBJECT_ID = 64;
const ISSUED_AT = 8;
const MAC = 32;
const UPLOAD_ID = new RegExp(`^[0-9a-f]{${OBJECT_ID + ISSUED_AT + MAC}}$`);

async function macOf(secret: string, repository: RepositoryName, objectId: string, issuedAt: string): Promise<string> {
  const mac = await hmacSha256(secret, `${repository}\n${objectId}\n${issuedAt}`);
  return toHex(mac.subarray(0, MAC / 2));
}

/** An upload id and when it stops being honoured. */
export interface IssuedUpload {
  /** The hex id of the session's Durable Object. */
  objectId: string;
  /** Milliseconds since the epoch: from then on the id is refused, and the session expires. */
  expiresAt: number;
}

/** When an id issued at `issuedAt` (milliseconds; ids keep whole seconds) expires. */
export function uploadExpiry(issuedAt: number, lifetimeSeconds: number): number {
  return (Math.floor(issuedAt / 1000) + lifetimeSeconds) * 1000;
}

export async function issueUploadId(secret: string, repository: RepositoryName, objectId: string, now: number): Promise<string> {
  const issuedAt = Math.floor(now / 1000)
    .toString(16)
    .padStart(ISSUED_AT, "0");
  return `${objectId}${issuedAt}${await macOf(secret, repository, objectId, issuedAt)}`;
}

/** The session an id names, if it was issued for this repository less than `lifetimeSeconds` ago. */
export async function verifyUploadId(
  secret: string,
  repository: RepositoryName,
  uploadId: string,
  now: number,
  lifetimeSeconds: number,
): Promise<IssuedUpload | null> {
  if (!UPLOAD_ID.test(uploadId)) return null;
  const objectId = uploadId.slice(0, OBJECT_ID);
  const issuedHex = uploadId.slice(OBJECT_ID, OBJECT_ID + ISSUED_AT);
  const expected = await macOf(secret, repository, objectId, issuedHex);
  const encoder = new TextEncoder();
  if (!crypto.subtle.timingSafeEqual(encoder.encode(expected), encoder.encode(uploadId.slice(OBJECT_ID + ISSUED_AT)))) return null;
  const expiresAt = uploadExpiry(parseInt(issuedHex, 16) * 1000, lifetimeSeconds);
  return now >= expiresAt ? null : { objectId, expiresAt };
}
