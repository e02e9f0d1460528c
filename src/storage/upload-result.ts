import type { Digest } from "../oci/digest";
import type { Usage } from "../oci/quotas";

/** Why an upload request was refused; routes turn each into its OCI error. `size` is what the upload holds. */
export type UploadFailure =
  /** No such upload for this repository, or it has ended. */
  | { reason: "unknown" }
  /** The chunk does not start where the upload ends. */
  | { reason: "out-of-order"; size: number; start: number }
  /** Another request is writing to the upload. */
  | { reason: "busy"; size: number }
  /** The body broke off, or ended before its announced length. */
  | { reason: "incomplete-body"; size: number; received: number; announced?: number }
  /** The body brought more than its announced length. */
  | { reason: "overflow"; size: number; announced: number }
  /** The upload would grow past what it can hold. */
  | { reason: "too-large"; size: number; limit: number }
  /** `actual` is null when the bytes are missing, absent when only R2 knows it. */
  | { reason: "digest-mismatch"; expected: Digest; actual?: Digest | null }
  /** The isolate's upload buffers are all in use: try again shortly. */
  | { reason: "out-of-memory"; size: number }
  /** The upload would pass its namespace's quota (SessionTarget's maxBytes): it has been discarded, nothing of it kept. */
  | { reason: "over-quota" }
  /**
   * The verified blob of `bytes` would pass its namespace's caps (SessionTarget's caps) as `usage`, what the
   * namespace held when it was to be recorded, shows: other pushes took the room. Discarded, nothing of it kept.
   */
  | { reason: "quota-reached"; bytes: number; usage: Usage }
  /** A completion was interrupted after the bytes were verified: only its PUT (or a cancel) can go on. */
  | { reason: "completing"; size: number };

export type UploadResult<T> = ({ ok: true } & T) | ({ ok: false } & UploadFailure);

export function refused(failure: UploadFailure): { ok: false } & UploadFailure {
  return { ok: false, ...failure };
}
