import type { Algorithm, Digest } from "../oci/digest";
import { RegistryError } from "../oci/errors";
import type { RepositoryName } from "../oci/names";
import { uploadRange } from "../oci/range";
import type { ChunkBounds, SessionResult, SessionTarget, UploadSession } from "./upload-session";

/** An upload session's id: the hex id of its Durable Object. */
const UPLOAD_ID = /^[0-9a-f]{64}$/;

/** The repository-facing side of upload sessions: issues their ids and raises their errors. */
export class Uploads {
  constructor(private readonly namespace: DurableObjectNamespace<UploadSession>) {}

  /** A new upload. Nothing is stored yet: the session begins with its first request. */
  create(repository: RepositoryName, algorithm: Algorithm): Upload {
    const id = this.namespace.newUniqueId();
    return new Upload(id.toString(), { repository, algorithm }, this.namespace.get(id));
  }

  open(repository: RepositoryName, uploadId: string, algorithm: Algorithm): Upload {
    let id: DurableObjectId | undefined;
    try {
      if (UPLOAD_ID.test(uploadId)) id = this.namespace.idFromString(uploadId);
    } catch {
      // Not an id this namespace issued.
    }
    if (!id) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `no upload ${uploadId.slice(0, 100)}`);
    return new Upload(uploadId, { repository, algorithm }, this.namespace.get(id));
  }
}

export class Upload {
  constructor(
    readonly id: string,
    readonly target: SessionTarget,
    private readonly stub: DurableObjectStub<UploadSession>,
  ) {}

  async size(): Promise<number> {
    return unwrap<{ size: number }>(await this.stub.status(this.target)).size;
  }

  async append(body: ReadableStream<Uint8Array> | null, chunk: ChunkBounds): Promise<number> {
    return unwrap<{ size: number }>(await this.stub.append(this.target, body, chunk)).size;
  }

  async complete(digest: Digest, body: ReadableStream<Uint8Array> | null, length?: number): Promise<{ digest: Digest; size: number }> {
    return unwrap<{ digest: Digest; size: number }>(await this.stub.complete(this.target, digest, body, length));
  }

  async cancel(): Promise<void> {
    unwrap<object>(await this.stub.cancel(this.target));
  }
}

function unwrap<T>(result: SessionResult<T>): T {
  if (result.ok) return result;
  // Range errors tell the client where the upload really ends.
  const headers: Record<string, string> = result.size === undefined ? {} : { Range: uploadRange(result.size) };
  throw new RegistryError(result.code, result.detail, { headers });
}
