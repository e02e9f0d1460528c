import type { UploadSession } from "./storage/upload-session";

/** The Worker's bindings, as declared in wrangler.toml. */
export interface Env {
  BLOBS: R2Bucket;
  DB: D1Database;
  UPLOADS: DurableObjectNamespace<UploadSession>;
  MAX_MANIFEST_BYTES: string;
  /** Keys the HMAC that upload ids carry (a secret; `npm start` generates one into .dev.vars). */
  UPLOAD_SECRET?: string;
}
