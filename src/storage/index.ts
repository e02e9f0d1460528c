import type { Env } from "../env";
import { AccessStore } from "./access";
import { BlobStore } from "./blobs";
import { LifecycleCursors } from "./lifecycle-cursors";
import { ManifestStore } from "./manifests";
import { PolicyStore } from "./policies";
import { ReferrerIndex } from "./referrers";
import { RepositoryIndex } from "./repositories";
import { RetentionStore } from "./retention";
import { TagIndex } from "./tags";
import { Uploads } from "./uploads";

/** Everything a request may touch, built from the bindings once per request (the seam for metering). */
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

export function createStorage(env: Env): Storage {
  return {
    access: new AccessStore(env.DB),
    blobs: new BlobStore(env.DB, env.BLOBS),
    uploads: new Uploads(env.UPLOADS, env.UPLOAD_SECRET),
    manifests: new ManifestStore(env.DB, env.BLOBS),
    policies: new PolicyStore(env.DB),
    tags: new TagIndex(env.DB),
    referrers: new ReferrerIndex(env.DB),
    repositories: new RepositoryIndex(env.DB),
  };
}

/** What the scheduled lifecycle pass touches, built once per run. */
export interface LifecycleStorage {
  cursors: LifecycleCursors;
  retention: RetentionStore;
}

export function createLifecycleStorage(env: Env): LifecycleStorage {
  return { cursors: new LifecycleCursors(env.DB), retention: new RetentionStore(env.DB) };
}
