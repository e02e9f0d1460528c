import type { UploadSession } from "./storage/upload-session";

/** The Worker's bindings, as declared in wrangler.toml. */
export interface Env {
  BLOBS: R2Bucket;
  DB: D1Database;
  UPLOADS: DurableObjectNamespace<UploadSession>;
  // Secrets (`wrangler secret put`; locally .dev.vars, which `npm start` fills in).
  /** Keys the HMAC that upload ids carry. */
  UPLOAD_SECRET?: string;
  /** A JSON array of private P-256 JWKs: the first signs registry tokens, all verify them. */
  TOKEN_KEYS?: string;
  /** The bootstrap administrator's login. */
  ADMIN_USERNAME?: string;
  ADMIN_PASSWORD?: string;
  // [vars]: strings, unset meaning the default; src/config.ts parses them.
  AUTH_MODE?: string;
  SPARSE_MANIFESTS?: string;
  IMMUTABLE_TAGS?: string;
  RETENTION_UNTAGGED_DAYS?: string;
  RETENTION_KEEP_TAGS?: string;
  RETENTION_KEEP_TAGS_MATCHING?: string;
  MAX_MANIFEST_BYTES?: string;
  MAX_MANIFEST_DESCRIPTORS?: string;
  MAX_ANNOTATION_BYTES?: string;
  MAX_REFERRERS_PAGE_BYTES?: string;
}
