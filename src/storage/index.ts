import type { Env } from "../env";
import { AccessStore } from "./access";
import { BlobStore } from "./blobs";
import { ManifestStore } from "./manifests";
import { PolicyStore } from "./policies";
import { meterD1, meterR2, type Meter } from "./meter";
import { ReferrerIndex } from "./referrers";
import { RepositoryIndex } from "./repositories";
import { TagIndex } from "./tags";
import { Uploads } from "./uploads";

/** Everything a request may touch, built from the bindings once per request, every operation counted on its meter. */
export interface Storage {
  access: AccessStore;
  blobs: BlobStore;
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
  return {
    access: new AccessStore(db),
    blobs: new BlobStore(db, bucket),
    uploads: new Uploads(env.UPLOADS, env.UPLOAD_SECRET, meter),
    manifests: new ManifestStore(db, bucket),
    policies: new PolicyStore(db),
    tags: new TagIndex(db),
    referrers: new ReferrerIndex(db),
    repositories: new RepositoryIndex(db),
  };
}
