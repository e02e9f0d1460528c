import { RegistryError } from "./errors";

/** The registered digest algorithms: everything the registry knows about each lives here. */
export const ALGORITHMS = {
  sha256: { webCrypto: "SHA-256", hexLength: 64 },
  sha512: { webCrypto: "SHA-512", hexLength: 128 },
} as const;

export type Algorithm = keyof typeof ALGORITHMS;

/** What an upload hashes with unless its POST asks otherwise (`?digest-algorithm=`). */
export const DEFAULT_ALGORITHM: Algorithm = "sha256";

/** A validated `algorithm:hex` string; only parseDigest and the hashers make one. */
export type Digest = string & { readonly __digest: unique symbol };

// The spec's digest grammar; a grammatical digest of an unregistered algorithm is still rejected.
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

function isAlgorithm(value: string): value is Algorithm {
  return Object.hasOwn(ALGORITHMS, value);
}

export function parseAlgorithm(value: string): Algorithm {
  if (!isAlgorithm(value)) throw new RegistryError("DIGEST_INVALID", `unsupported digest algorithm "${value}"`);
  return value;
}

export function parseDigest(value: string): Digest {
  if (!DIGEST_GRAMMAR.test(value)) throw new RegistryError("DIGEST_INVALID", `malformed digest "${value.slice(0, 200)}"`);
  const colon = value.indexOf(":");
  const algorithm = parseAlgorithm(value.slice(0, colon));
  const hex = value.slice(colon + 1);
  if (hex.length !== ALGORITHMS[algorithm].hexLength || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError("DIGEST_INVALID", `malformed ${algorithm} digest "${value.slice(0, 200)}"`);
  }
  return value as Digest;
}

export function algorithmOf(digest: Digest): Algorithm {
  return digest.slice(0, digest.indexOf(":")) as Algorithm;
}

export function hexOf(digest: Digest): string {
  return digest.slice(digest.indexOf(":") + 1);
}

/** Bytes as lowercase hex, as digests spell them. */
export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

function toDigest(algorithm: Algorithm, hash: ArrayBuffer): Digest {
  return `${algorithm}:${toHex(hash)}` as Digest;
}

export async function digestBytes(algorithm: Algorithm, bytes: ArrayBuffer | ArrayBufferView): Promise<Digest> {
  return toDigest(algorithm, await crypto.subtle.digest(ALGORITHMS[algorithm].webCrypto, bytes));
}

/** Hashes bytes as they stream past, with the runtime's native digest. */
export class Hasher {
  readonly #stream: DigestStream;
  readonly #writer: WritableStreamDefaultWriter<ArrayBuffer | ArrayBufferView>;

  constructor(readonly algorithm: Algorithm) {
    this.#stream = new crypto.DigestStream(ALGORITHMS[algorithm].webCrypto);
    this.#writer = this.#stream.getWriter();
  }

  async update(bytes: Uint8Array): Promise<void> {
    if (bytes.length > 0) await this.#writer.write(bytes);
  }

  async digest(): Promise<Digest> {
    await this.#writer.close();
    return toDigest(this.algorithm, await this.#stream.digest);
  }
}

export async function digestStream(algorithm: Algorithm, body: ReadableStream<Uint8Array>): Promise<Digest> {
  const hasher = new Hasher(algorithm);
  for await (const chunk of body) await hasher.update(chunk);
  return hasher.digest();
}
