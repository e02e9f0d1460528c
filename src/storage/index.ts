import type { Env } from "../env";
import { AccessStore } from "./access";
import { BlobCache } from "./blob-cache";
import { BlobStore } from "./blobs";
import type { Database } from "./database";
import { GcStore } from "./gc";
import { ManifestCache } from "./manifest-cache";
import { LifecycleCursors } from "./lifecycle-cursors";
import { ManifestStore } from "./manifests";
import { PolicyStore } from "./policies";
import { QuotaStore } from "./quotas";
import { meterD1, meterR2, type Meter } from "./meter";
import { R2Presigner } from "./r2-presign";
import { ReferrerIndex } from "./referrers";
import { RepositoryIndex } from "./repositories";
import { openSession, type Databases, type Session, type SessionStart } from "./session";
import { RetentionStore } from "./retention";
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
  quotas: QuotaStore;
  manifestCache: ManifestCache;
  tags: TagIndex;
  referrers: ReferrerIndex;
  repositories: RepositoryIndex;
  /** The D1 bookmark the request's queries reached, for the client to carry; null when it ran none. */
  bookmark(): string | null;
}

/** What storage needs of the request it serves, besides its meter. */
export interface RequestScope extends SessionStart {
  meter: Meter;
  /** The origin the request came to: the cache's keys live under it. */
  origin: string;
  manifestCacheSeconds: number;
  uploadExpirySeconds: number;
  /** Keeps work going after the response is sent. */
  waitUntil(promise: Promise<unknown>): void;
}

export function createStorage(env: Env, request: RequestScope): Storage {
  const { meter } = request;
  const session = openSession(env.DB, request);
  const databases = new MeteredDatabases(session, meter);
  const bucket = meterR2(env.BLOBS, meter);
  const blobs = new BlobStore(databases, bucket);
  return {
    access: new AccessStore(databases),
    blobs,
    blobCache: new BlobCache(caches.default, blobs, request.origin),
    presigner: new R2Presigner(env),
    uploads: new Uploads(env.UPLOADS, env.UPLOAD_SECRET, meter, bucket, blobs, request.uploadExpirySeconds),
    manifests: new ManifestStore(databases, bucket),
    manifestCache: new ManifestCache(request.origin, request.manifestCacheSeconds, request.waitUntil),
    policies: new PolicyStore(databases.db),
    quotas: new QuotaStore(databases.db),
    tags: new TagIndex(databases),
    referrers: new ReferrerIndex(databases.db),
    repositories: new RepositoryIndex(databases.db),
    bookmark: () => session.bookmark(),
  };
}

/** The request's session, metered around it, so what the primary confirms is counted too; each database opened by its first query. */
class MeteredDatabases implements Databases {
  readonly db: Database;
  #primary: Database | null | undefined;

  constructor(
    private readonly session: Session,
    private readonly meter: Meter,
  ) {
    this.db = meterD1(() => session.db, meter);
  }

  get primary(): Database | null {
    if (this.#primary === undefined) this.#primary = this.session.primary && meterD1(this.session.primary, this.meter);
    return this.#primary;
  }
}

/** What the scheduled lifecycle pass touches, built once per run. */
export interface LifecycleStorage {
  cursors: LifecycleCursors;
  retention: RetentionStore;
  gc: GcStore;
}

export function createLifecycleStorage(env: Env): LifecycleStorage {
  return { cursors: new LifecycleCursors(env.DB), retention: new RetentionStore(env.DB), gc: new GcStore(env.DB, env.BLOBS) };
}
