import type { Env } from "../env";
import { AccessStore } from "./access";
import { BlobCache } from "./blob-cache";
import { BlobStore } from "./blobs";
import { ManifestStore } from "./manifests";
import { R2Presigner } from "./r2-presign";
import { ReferrerIndex } from "./referrers";
import { RepositoryIndex } from "./repositories";
import { TagIndex } from "./tags";
import { Uploads } from "./uploads";

/** Everything a request may touch, built from the bindings once per request (the seam for metering). */
export interface Storage {
  access: AccessStore;
  blobs: BlobStore;
  blobCache: BlobCache;
  presigner: R2Presigner;
  uploads: Uploads;
  manifests: ManifestStore;
  tags: TagIndex;
  referrers: ReferrerIndex;
  repositories: RepositoryIndex;
}

export function createStorage(env: Env): Storage {
  const blobs = new BlobStore(env.DB, env.BLOBS);
  return {
    access: new AccessStore(env.DB),
    blobs,
    blobCache: new BlobCache(caches.default, blobs),
    presigner: new R2Presigner(env),
    uploads: new Uploads(env.UPLOADS, env.UPLOAD_SECRET),
    manifests: new ManifestStore(env.DB, env.BLOBS),
    tags: new TagIndex(env.DB),
    referrers: new ReferrerIndex(env.DB),
    repositories: new RepositoryIndex(env.DB),
  };
}
