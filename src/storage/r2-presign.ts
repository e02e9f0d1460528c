import { toHex } from "../oci/digest";

/*
 * Presigned GETs on R2's S3 endpoint, `https://<account>.r2.cloudflarestorage.com/<bucket>/<key>`:
 * AWS Signature Version 4 carried in the query string (the R2 binding cannot
 * presign). The URL is signed for one method and its host alone, with an
 * unsigned payload, and R2 refuses it once `X-Amz-Expires` seconds have
 * passed since `X-Amz-Date` (1 second to 7 days).
 */

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** R2's region is always `auto`. */
  region: string;
}

/** The R2 account, bucket and API keys, from the Worker's secrets and vars; each is checked when a URL is signed. */
export interface R2Endpoint {
  R2_ACCOUNT_ID?: string;
  R2_ACCESS_KEY_ID?: string;
  R2_SECRET_ACCESS_KEY?: string;
  R2_BUCKET_NAME?: string;
}

/** Signs GETs of the bucket's objects for clients that hold no credentials. */
export class R2Presigner {
  constructor(private readonly endpoint: R2Endpoint) {}

  /** A URL that GETs the object at `objectKey` until `expires` seconds after `now`. */
  async presignGet(objectKey: string, expires: number, now: Date): Promise<string> {
    const account = required(this.endpoint, "R2_ACCOUNT_ID");
    const bucket = required(this.endpoint, "R2_BUCKET_NAME");
    const credentials = {
      accessKeyId: required(this.endpoint, "R2_ACCESS_KEY_ID"),
      secretAccessKey: required(this.endpoint, "R2_SECRET_ACCESS_KEY"),
      region: "auto",
    };
    // Path-style addressing: the bucket is the first segment, so one host serves every bucket of the account.
    return presignUrl("GET", `https://${account}.r2.cloudflarestorage.com`, `/${bucket}/${objectKey}`, credentials, now, expires);
  }
}

function required(endpoint: R2Endpoint, name: keyof R2Endpoint): string {
  const value = endpoint[name];
  if (!value) throw new Error(`BLOB_REDIRECT=presigned needs ${name}, which is not set (see the README's section on serving blobs)`);
  return value;
}

/**
 * Signs `method` on `origin` + `path` (unencoded; each segment is encoded
 * once, as S3 expects) with SigV4 query parameters, valid `expires` seconds
 * from `now`.
 */
export async function presignUrl(method: string, origin: string, path: string, credentials: S3Credentials, now: Date, expires: number): Promise<string> {
  const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${credentials.region}/s3/aws4_request`;
  // In the canonical request's order: sorted by name.
  const parameters: [string, string][] = [
    ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
    ["X-Amz-Credential", `${credentials.accessKeyId}/${scope}`],
    ["X-Amz-Date", amzDate],
    ["X-Amz-Expires", String(expires)],
    ["X-Amz-SignedHeaders", "host"],
  ];
  const query = parameters
    .map(([name, value]) => `${uriEncode(name)}=${uriEncode(value)}`)
    .join("&");
  const canonicalPath = path.split("/").map(uriEncode).join("/");
  const canonicalRequest = [method, canonicalPath, query, `host:${new URL(origin).host}`, "", "host", "UNSIGNED-PAYLOAD"].join("\n");
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, toHex(await crypto.subtle.digest("SHA-256", utf8(canonicalRequest)))].join("\n");
  let key: ArrayBuffer | Uint8Array = utf8(`AWS4${credentials.secretAccessKey}`);
  for (const part of [day, credentials.region, "s3", "aws4_request"]) key = await hmac(key, part);
  const signature = toHex(await hmac(key, stringToSign));
  return `${origin}${canonicalPath}?${query}&X-Amz-Signature=${signature}`;
}

/** RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 asks. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

async function hmac(key: ArrayBuffer | Uint8Array, message: string): Promise<ArrayBuffer> {
  const imported = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", imported, utf8(message));
}
