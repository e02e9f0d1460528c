import type { UploadSession } from "./storage/upload-session";

/** The Worker's bindings, as declared in wrangler.toml. */
export interface Env {
  BLOBS: R2Bucket;
  DB: D1Database;
  UPLOADS: DurableObjectNamespace<UploadSession>;
  // Secrets (`wrangler secret put`; locally .dev.vars, which `npm start` fills in).
  /** Keys the HMAC that upload ids carry. */
  UPLOAD_SECRET?: string;
  /** Keys the HMAC that download links carry (BLOB_REDIRECT signed, and public blobs under presigned). */
  DOWNLOAD_SECRET?: string;
  /** An R2 API token's keys and the account, for presigned R2 URLs (BLOB_REDIRECT presigned). */
  R2_ACCOUNT_ID?: string;
  R2_ACCESS_KEY_ID?: string;
  R2_SECRET_ACCESS_KEY?: string;
  /** A JSON array of private P-256 JWKs: the first signs registry tokens, all verify them. */
  TOKEN_KEYS?: string;
  /** The bootstrap administrator's login. */
  ADMIN_USERNAME?: string;
  ADMIN_PASSWORD?: string;
  // [vars]: strings, unset meaning the default; src/config.ts parses them.
  AUTH_MODE?: string;
  SPARSE_MANIFESTS?: string;
  IMMUTABLE_TAGS?: string;
  MANIFEST_CACHE_SECONDS?: string;
  RETENTION_UNTAGGED_DAYS?: string;
  RETENTION_KEEP_TAGS?: string;
  RETENTION_KEEP_TAGS_MATCHING?: string;
  GC_GRACE_SECONDS?: string;
  MAX_MANIFEST_BYTES?: string;
  MAX_BLOB_BYTES?: string;
  QUOTA_MAX_STORAGE_BYTES?: string;
  QUOTA_MAX_REPOSITORIES?: string;
  MAX_MANIFEST_DESCRIPTORS?: string;
  MAX_ANNOTATION_BYTES?: string;
  MAX_REFERRERS_PAGE_BYTES?: string;
  UPLOAD_EXPIRY_SECONDS?: string;
  COST_HEADER?: string;
  REQUEST_LOG?: string;
  BLOB_REDIRECT?: string;
  REDIRECT_MIN_BYTES?: string;
  REDIRECT_TTL_SECONDS?: string;
  /** The bucket BLOBS names, as R2's S3 endpoint knows it (BLOB_REDIRECT presigned). */
  R2_BUCKET_NAME?: string;
}
