import { ERROR_CODES, RegistryError } from "./errors";
import { manifestTooLarge, type Limits } from "./limits";

/**
 * Quotas of a namespace, judged against a push. Pure: storage/quotas.ts
 * reads the snapshot, routes refuse with what these functions say.
 */

/** A limit in force, and what sets it: a namespace policy's pattern, or the var of the default. */
export interface Binding {
  value: number;
  source: { policy: string } | { variable: string };
}

/** What a namespace holds, and whether the repository pushed to is one of its repositories. */
export interface Usage {
  /** Bytes the namespace's repositories hold: blobs linked (once per repository) and manifests. */
  usedBytes: number;
  repositories: number;
  /** Whether the repository pushed to exists already. */
  repositoryExists: boolean;
}

/** What a push into a namespace must stay within (null: no limit), and what the namespace holds. */
export interface Quota extends Usage {
  namespace: string;
  maxBlobBytes: Binding | null;
  maxManifestBytes: Binding | null;
  maxStorageBytes: Binding | null;
  maxRepositories: Binding | null;
}

/**
 * The limits the write that makes a push visible holds it to, against the
 * namespace's usage as it stands when that write commits: concurrent pushes
 * each pass the checks made when they begin, against the same usage.
 */
export interface QuotaCaps {
  maxStorageBytes: number | null;
  maxRepositories: number | null;
}

export function capsOf(quota: Quota): QuotaCaps {
  return { maxStorageBytes: quota.maxStorageBytes?.value ?? null, maxRepositories: quota.maxRepositories?.value ?? null };
}

/** The most bytes something pushed now may have, and the refusal of anything larger. */
export interface Room {
  bytes: number;
  refusal: RegistryError;
}

/** "5 MB", "8 MiB", "1.5 GB" when exact, else "5000001 bytes". */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of UNITS) {
    const amount = bytes / size;
    if (amount >= 1 && Number.isInteger(amount * 10)) return `${amount} ${unit}`;
  }
  return `${bytes} bytes`;
}

const UNITS = [
  ["TiB", 1024 ** 4],
  ["TB", 1000 ** 4],
  ["GiB", 1024 ** 3],
  ["GB", 1000 ** 3],
  ["MiB", 1024 ** 2],
  ["MB", 1000 ** 2],
  ["KiB", 1024],
  ["kB", 1000],
] as const;

function sourceOf(binding: Binding): string {
  return "policy" in binding.source ? `policy ${binding.source.policy}` : binding.source.variable;
}

/** 413 with the words in the message, which clients print (the detail they do not). */
function tooLarge(message: string, limit: string, binding: Binding, namespace: string): RegistryError {
  return new RegistryError("SIZE_INVALID", { limit, value: binding.value, namespace, ...binding.source }, { status: 413, message });
}

/**
 * The room a blob pushed into the namespace has: its largest size, or what
 * is left of its storage, whichever is less. Null where neither limits it.
 */
export function blobRoom(quota: Quota): Room | null {
  const { maxBlobBytes: blob, maxStorageBytes: storage, namespace } = quota;
  const left = storage && Math.max(0, storage.value - quota.usedBytes);
  if (blob && (left === null || blob.value <= left)) {
    return { bytes: blob.value, refusal: tooLarge(`blob exceeds the limit of ${formatBytes(blob.value)} for namespace ${namespace} (${sourceOf(blob)})`, "maxBlobBytes", blob, namespace) };
  }
  return storage && { bytes: left!, refusal: storageRefusal(quota, storage) };
}

/**
 * The room a manifest has: MAX_MANIFEST_BYTES, or a policy's smaller limit.
 * What is left of the namespace's storage is judged once its size is known (exceedsStorage).
 */
export function manifestRoom(quota: Quota, limits: Limits): Room {
  const policy = quota.maxManifestBytes;
  if (!policy || policy.value >= limits.MAX_MANIFEST_BYTES) return { bytes: limits.MAX_MANIFEST_BYTES, refusal: manifestTooLarge(limits) };
  const message = `manifest exceeds the limit of ${formatBytes(policy.value)} for namespace ${quota.namespace} (${sourceOf(policy)})`;
  return { bytes: policy.value, refusal: tooLarge(message, "maxManifestBytes", policy, quota.namespace) };
}

/** The refusal of `bytes` more in the namespace, if they take it past its storage limit. */
export function exceedsStorage(quota: Quota, bytes: number): RegistryError | null {
  const storage = quota.maxStorageBytes;
  return storage && quota.usedBytes + bytes > storage.value ? storageRefusal(quota, storage) : null;
}

function storageRefusal(quota: Quota, storage: Binding): RegistryError {
  const message = `push exceeds the storage limit of ${formatBytes(storage.value)} for namespace ${quota.namespace} (${sourceOf(storage)}): ${formatBytes(quota.usedBytes)} in use`;
  return tooLarge(message, "maxStorageBytes", storage, quota.namespace);
}

/**
 * The refusal of a push of `bytes` whose write found no room under the caps
 * of `quota` (capsOf): the repository it would create, else its bytes, as
 * `usage`, what the namespace held when the write ran, shows.
 */
export function capsRefusal(quota: Quota, usage: Usage, bytes: number): RegistryError {
  const seen = { ...quota, ...usage };
  const refusal = newRepositoryRefusal(seen) ?? exceedsStorage(seen, bytes);
  if (!refusal) throw new Error(`a push of ${bytes} bytes refused by caps that its namespace's usage does not reach: ${JSON.stringify(seen)}`);
  return refusal;
}

/** 403 DENIED when the push would create a repository the namespace has no room for. */
export function newRepositoryRefusal(quota: Quota): RegistryError | null {
  const limit = quota.maxRepositories;
  if (quota.repositoryExists || !limit || quota.repositories < limit.value) return null;
  const message = `${ERROR_CODES.DENIED.message}: namespace ${quota.namespace} has ${quota.repositories} repositories, its limit (${sourceOf(limit)}): no new repository may be created`;
  return new RegistryError("DENIED", { limit: "maxRepositories", value: limit.value, namespace: quota.namespace, ...limit.source }, { message });
}
