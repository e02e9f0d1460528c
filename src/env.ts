import type { UploadSession } from "./storage/upload-session";

/** The Worker's bindings, as declared in wrangler.toml. */
export interface Env {
  BLOBS: R2Bucket;
  DB: D1Database;
  UPLOADS: DurableObjectNamespace<UploadSession>;
  /** Keys the HMAC that upload ids carry (a secret; `npm start` generates one into .dev.vars). */
  UPLOAD_SECRET?: string;
  // [vars]: strings, unset meaning the default; src/config.ts parses them.
  SPARSE_MANIFESTS?: string;
  MAX_MANIFEST_BYTES?: string;
  MAX_MANIFEST_DESCRIPTORS?: string;
  MAX_ANNOTATION_BYTES?: string;
  MAX_REFERRERS_PAGE_BYTES?: string;
}
