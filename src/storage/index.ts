import type { Env } from "../env";
import { AccessStore } from "./access";
import { BlobCache } from "./blob-cache";
import { BlobStore } from "./blobs";
import { ManifestStore } from "./manifests";
import { PolicyStore } from "./policies";
import { meterD1, meterR2, type Meter } from "./meter";
import { R2Presigner } from "./r2-presign";
import { ReferrerIndex } from "./referrers";
import { RepositoryIndex } from "./repositories";
import { TagIndex } from "./tags";
import { Uploads } from "./uploads";

/** Everything a request may touch, built from the bindings once per request, every operation counted on its meter. */
export interface Storage {
  access: AccessStore;
  blobs: BlobStore;
  blobCache: BlobCache;
  presigner: R2Presigner;
  uploads: Uploads;
  manifests: ManifestStore;
  policies: PolicyStore;
  tags: TagIndex;
  referrers: ReferrerIndex;
  repositories: RepositoryIndex;
}

export function createStorage(env: Env, meter: Meter): Storage {
  const db = meterD1(env.DB, meter);
  const bucket = meterR2(env.BLOBS, meter);
  const blobs = new BlobStore(db, bucket);
  return {
    access: new AccessStore(db),
    blobs,
    blobCache: new BlobCache(caches.default, blobs),
    presigner: new R2Presigner(env),
    uploads: new Uploads(env.UPLOADS, env.UPLOAD_SECRET, meter),
    manifests: new ManifestStore(db, bucket),
    policies: new PolicyStore(db),
    tags: new TagIndex(db),
    referrers: new ReferrerIndex(db),
    repositories: new RepositoryIndex(db),
  };
}
