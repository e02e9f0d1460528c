/**
 * Every error the registry answers with, registered once: the OCI Distribution
 * error codes plus the three distribution/distribution codes clients also know.
 * Handlers throw RegistryError; app.ts turns it into the spec's JSON body.
 */
export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: "blob upload unknown to registry" },
  DIGEST_INVALID: { status: 400, message: "provided digest did not match uploaded content" },
  MANIFEST_BLOB_UNKNOWN: { status: 404, message: "manifest references a manifest or blob unknown to registry" },
  MANIFEST_INVALID: { status: 400, message: "manifest invalid" },
  MANIFEST_UNKNOWN: { status: 404, message: "manifest unknown to registry" },
  NAME_INVALID: { status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: { status: 404, message: "repository name not known to registry" },
  SIZE_INVALID: { status: 400, message: "provided length did not match content length" },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { status: 400, message: "the operation is unsupported" },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  RANGE_INVALID: { status: 416, message: "invalid content range" },
  PAGINATION_NUMBER_INVALID: { status: 400, message: "invalid number of results requested" },
  TAG_INVALID: { status: 400, message: "invalid tag" },
  UNKNOWN: { status: 500, message: "unknown error" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RegistryErrorOptions {
  /** Overrides the code's usual status where the case asks for another (404 for no route, 413, 409 for a blob still referenced). */
  status?: number;
  headers?: Record<string, string>;
  /** Replaces the code's usual message where clients print only the message (docker, podman) and the case needs words. */
  message?: string;
}

export class RegistryError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** The body's message (Error's own `message` is for logs). */
  readonly clientMessage: string;

  constructor(
    readonly code: ErrorCode,
    readonly detail?: unknown,
    options: RegistryErrorOptions = {},
  ) {
    super(typeof detail === "string" ? `${code}: ${detail}` : code);
    this.name = "RegistryError";
    this.status = options.status ?? ERROR_CODES[code].status;
    this.headers = options.headers ?? {};
    this.clientMessage = options.message ?? ERROR_CODES[code].message;
  }

  /** The spec's error body: `{"errors":[{"code","message","detail"}]}`. */
  toJSON(): { errors: { code: ErrorCode; message: string; detail?: unknown }[] } {
    return {
      errors: [{ code: this.code, message: this.clientMessage, ...(this.detail === undefined ? {} : { detail: this.detail }) }],
    };
  }
}
