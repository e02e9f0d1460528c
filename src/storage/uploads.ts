import type { Algorithm, Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";
import type { BlobStore } from "./blobs";
import { pushWhole } from "./direct-upload";
import { blobObjectKey } from "./keys";
import type { Meter, Metered } from "./meter";
import { MAX_OBJECT_BYTES } from "./object-writer";
import { issueUploadId, uploadExpiry, verifyUploadId } from "./upload-id";
import type { UploadResult } from "./upload-result";
import type { ChunkBounds, SessionTarget, UploadSession } from "./upload-session";

/** What a push is held to by its namespace's quotas, as the request read them. */
export type PushLimits = Pick<SessionTarget, "maxBytes" | "caps">;

/** The repository-facing side of uploads: issues session ids and checks them, and pushes whole blobs that need no session. */
export class Uploads {
  constructor(
    private readonly namespace: DurableObjectNamespace<UploadSession>,
    private readonly secret: string | undefined,
    private readonly meter: Meter,
    private readonly bucket: R2Bucket,
    private readonly blobs: BlobStore,
    /** UPLOAD_EXPIRY_SECONDS: how long an upload lives after its POST. */
    private readonly lifetimeSeconds: number,
  ) {}

  /** A new upload. Nothing is stored yet: the session begins with its first request. `limits`: the quotas its requests are held to. */
  async create(repository: RepositoryName, algorithm: Algorithm, limits: PushLimits = {}): Promise<Upload> {
    const objectId = this.namespace.newUniqueId();
    const now = Date.now();
    const id = await issueUploadId(this.#secret(), repository, objectId.toString(), now);
    return new Upload(id, { repository, algorithm, expiresAt: uploadExpiry(now, this.lifetimeSeconds), ...limits }, this.namespace.get(objectId), this.meter);
  }

  /** The upload an id names, if it was issued for this repository and has not expired. */
  async open(repository: RepositoryName, uploadId: string, algorithm: Algorithm, limits: PushLimits = {}): Promise<Upload | null> {
    const issued = await verifyUploadId(this.#secret(), repository, uploadId, Date.now(), this.lifetimeSeconds);
    if (!issued) return null;
    const stub = this.namespace.get(this.namespace.idFromString(issued.objectId));
    return new Upload(uploadId, { repository, algorithm, expiresAt: issued.expiresAt, ...limits }, stub, this.meter);
  }

  /**
   * A blob pushed in one request (POST ?digest=). One that announces its
   * length and fits one R2 object goes straight to R2 from here; any other
   * (a chunked body of unknown length, a range) through a session.
   */
  async push(
    repository: RepositoryName,
    algorithm: Algorithm,
    digest: Digest,
    body: ReadableStream<Uint8Array> | null,
    chunk: ChunkBounds,
    limits: PushLimits = {},
  ): Promise<UploadResult<{ digest: Digest; size: number }>> {
    if (!isWholeObject(chunk)) return (await this.create(repository, algorithm, limits)).complete(digest, body, chunk);
    // An announced length past the quota is refused by the route before any byte is read.
    // A fresh id of the kind sessions have, so the blob's key is like any upload's; no session ever takes it.
    const key = blobObjectKey(this.namespace.newUniqueId().toString());
    return pushWhole({ bucket: this.bucket, blobs: this.blobs, meter: this.meter }, { repository, key, caps: limits.caps }, digest, body, chunk.length);
  }

  #secret(): string {
    if (!this.secret) throw new Error("the secret UPLOAD_SECRET is not set (wrangler secret put UPLOAD_SECRET)");
    return this.secret;
  }
}

/**
 * One upload, reached through its session object; every answer is a result,
 * never an HTTP error. Each call is a Durable Object request, and adds what the
 * object spent answering it to the request's meter.
 */
export class Upload {
  constructor(
    readonly id: string,
    readonly target: SessionTarget,
    private readonly stub: DurableObjectStub<UploadSession>,
    private readonly meter: Meter,
  ) {}

  size(): Promise<UploadResult<{ size: number }>> {
    return this.#call(this.stub.status(this.target));
  }

  append(body: ReadableStream<Uint8Array> | null, chunk: ChunkBounds): Promise<UploadResult<{ size: number }>> {
    return this.#call(this.stub.append(this.target, body, chunk));
  }

  complete(digest: Digest, body: ReadableStream<Uint8Array> | null, chunk: ChunkBounds): Promise<UploadResult<{ digest: Digest; size: number }>> {
    return this.#call(this.stub.complete(this.target, digest, body, chunk));
  }

  cancel(): Promise<UploadResult<object>> {
    return this.#call(this.stub.cancel(this.target));
  }

  async #call<T>(answer: Promise<Metered<T>>): Promise<T> {
    this.meter.count("doRequests");
    const { result, cost } = await answer;
    this.meter.add(cost);
    return result;
  }
}

/** Whether a body of this announced length and range can be streamed into one R2 object from the Worker. */
function isWholeObject(chunk: ChunkBounds): chunk is { length: number } {
  return chunk.start === undefined && chunk.length !== undefined && chunk.length <= MAX_OBJECT_BYTES;
}
