import type { Env } from "../env";
import { AccessStore } from "./access";
import { BlobStore } from "./blobs";
import { ManifestCache } from "./manifest-cache";
import { ManifestStore } from "./manifests";
import { ReferrerIndex } from "./referrers";
import { RepositoryIndex } from "./repositories";
import { openSession, type SessionStart } from "./session";
import { TagIndex } from "./tags";
import { Uploads } from "./uploads";

/** Everything a request may touch, built from the bindings once per request (the seam for metering). */
export interface Storage {
  access: AccessStore;
  blobs: BlobStore;
  uploads: Uploads;
  manifests: ManifestStore;
  manifestCache: ManifestCache;
  tags: TagIndex;
  referrers: ReferrerIndex;
  repositories: RepositoryIndex;
  /** The D1 bookmark the request's queries reached, for the client to carry; null when it ran none. */
  bookmark(): string | null;
}

/** What storage needs of the request it serves. */
export interface RequestScope extends SessionStart {
  /** The origin the request came to: the cache's keys live under it. */
  origin: string;
  manifestCacheSeconds: number;
  /** Keeps work going after the response is sent. */
  waitUntil(promise: Promise<unknown>): void;
}

export function createStorage(env: Env, request: RequestScope): Storage {
  const session = openSession(env.DB, request);
  const databases = { db: session.db, primary: session.primary };
  return {
    access: new AccessStore(databases),
    blobs: new BlobStore(databases, env.BLOBS),
    uploads: new Uploads(env.UPLOADS, env.UPLOAD_SECRET),
    manifests: new ManifestStore(databases, env.BLOBS),
    manifestCache: new ManifestCache(request.origin, request.manifestCacheSeconds, request.waitUntil),
    tags: new TagIndex(databases),
    referrers: new ReferrerIndex(session.db),
    repositories: new RepositoryIndex(session.db),
    bookmark: () => session.bookmark(),
  };
}
