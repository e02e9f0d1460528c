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
  /** How long an isolate remembers a blob a repository holds (see BlobStore). */
  blobMemorySeconds: number;
  uploadExpirySeconds: number;
  /** Keeps work going after the response is sent. */
  waitUntil(promise: Promise<unknown>): void;
}

export function createStorage(env: Env, request: RequestScope): Storage {
  return new RequestStorage(env, request);
}

/**
 * Each store made when the request first asks for it: most requests touch one
 * or two of them (a tags page only its index), and this is built for every
 * request. A class with private fields, not an object literal with getters,
 * which V8 builds slowly.
 */
class RequestStorage implements Storage {
  readonly #env: Env;
  readonly #request: RequestScope;
  readonly #session: Session;
  readonly #databases: MeteredDatabases;
  #bucket?: R2Bucket;
  #access?: AccessStore;
  #blobs?: BlobStore;
  #blobCache?: BlobCache;
  #presigner?: R2Presigner;
  #uploads?: Uploads;
  #manifests?: ManifestStore;
  #manifestCache?: ManifestCache;
  #policies?: PolicyStore;
  #quotas?: QuotaStore;
  #tags?: TagIndex;
  #referrers?: ReferrerIndex;
  #repositories?: RepositoryIndex;

  constructor(env: Env, request: RequestScope) {
    this.#env = env;
    this.#request = request;
    this.#session = openSession(env.DB, request);
    this.#databases = new MeteredDatabases(this.#session, request.meter);
  }

  get #r2(): R2Bucket {
    return (this.#bucket ??= meterR2(this.#env.BLOBS, this.#request.meter));
  }

  get access(): AccessStore {
    return (this.#access ??= new AccessStore(this.#databases));
  }

  get blobs(): BlobStore {
    return (this.#blobs ??= new BlobStore(this.#databases, this.#r2, this.#request.blobMemorySeconds));
  }

  get blobCache(): BlobCache {
    return (this.#blobCache ??= new BlobCache(caches.default, this.blobs, this.#request.origin));
  }

  get presigner(): R2Presigner {
    return (this.#presigner ??= new R2Presigner(this.#env));
  }

  get uploads(): Uploads {
    return (this.#uploads ??= new Uploads(this.#env.UPLOADS, this.#env.UPLOAD_SECRET, this.#request.meter, this.#r2, this.blobs, this.#request.uploadExpirySeconds));
  }

  get manifests(): ManifestStore {
    return (this.#manifests ??= new ManifestStore(this.#databases, this.#r2));
  }

  get manifestCache(): ManifestCache {
    return (this.#manifestCache ??= new ManifestCache(this.#request.origin, this.#request.manifestCacheSeconds, this.#request.waitUntil));
  }

  get policies(): PolicyStore {
    return (this.#policies ??= new PolicyStore(this.#databases.db));
  }

  get quotas(): QuotaStore {
    return (this.#quotas ??= new QuotaStore(this.#databases.db));
  }

  get tags(): TagIndex {
    return (this.#tags ??= new TagIndex(this.#databases));
  }

  get referrers(): ReferrerIndex {
    return (this.#referrers ??= new ReferrerIndex(this.#databases.db));
  }

  get repositories(): RepositoryIndex {
    return (this.#repositories ??= new RepositoryIndex(this.#databases.db));
  }

  bookmark(): string | null {
    return this.#session.bookmark();
  }
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
