import * as z from "zod";
import { RegistryError, type ErrorCode, type RegistryErrorOptions } from "./errors";
import type { ParsedManifest } from "./manifest";
import { MEDIA_TYPES } from "./media-types";

/**
 * Every limit the registry enforces, in one place. The configurable ones are
 * wrangler vars with a default for when the var is unset; a request past one
 * is refused with an error whose detail names the var and its value.
 */

const MiB = 1024 * 1024;

/** R2's most parts in one multipart upload: the most an upload can be cut into. */
export const MAX_UPLOAD_PARTS = 10_000;

/**
 * The bytes of upload buffers one isolate may hold at once: four uploads of
 * two 8 MiB parts and one part more, so a fifth can always begin. Durable
 * Objects of one class can share an isolate and its 128 MB; the rest is left
 * to the runtime, the streams and garbage not yet collected.
 */
export const UPLOAD_BUFFER_BUDGET = 72 * MiB;

/** The most tags or repositories one page carries: enough that most listings take one request. */
export const MAX_NAMES_PAGE = 10_000;

/** Referrer descriptors carry annotations, so their pages are smaller (and bounded in bytes too). */
export const MAX_REFERRERS_PAGE = 1_000;

// Vars are strings: a limit is a positive whole number.
const amount = (fallback: number) =>
  z
    .string()
    .regex(/^[1-9][0-9]{0,14}$/, "expected a positive whole number")
    .transform(Number)
    .default(fallback);

/** The configurable limits by var name, each with its default; src/config.ts parses them. */
export const LIMIT_VARS = {
  // The spec asks registries to accept manifests of at least 4 MiB.
  MAX_MANIFEST_BYTES: amount(4 * MiB),
  // Counted as pushed: config and layers, or an index's manifests, plus subject.
  MAX_MANIFEST_DESCRIPTORS: amount(1000),
  // A referrer's annotations are copied into its D1 row, beside up to 950 KB of
  // inline manifest: 128 KiB fits the 2 MB row even if JSON escaping made it 6 times larger.
  MAX_ANNOTATION_BYTES: amount(64 * 1024).pipe(z.number().max(128 * 1024)),
  MAX_REFERRERS_PAGE_BYTES: amount(4 * MiB),
};

export type Limits = { [Name in keyof typeof LIMIT_VARS]: number };

function exceeded(code: ErrorCode, what: string, name: keyof Limits, limits: Limits, options?: RegistryErrorOptions): RegistryError {
  return new RegistryError(code, `${what} exceeds the limit ${name} = ${limits[name]}`, options);
}

/** A manifest body past MAX_MANIFEST_BYTES: 413, as the spec asks. */
export function manifestTooLarge(limits: Limits): RegistryError {
  return exceeded("SIZE_INVALID", "the manifest", "MAX_MANIFEST_BYTES", limits, { status: 413 });
}

/** Refuses a manifest with too many descriptors, or a referrer with too many bytes of annotations. */
export function enforceManifestLimits(manifest: ParsedManifest, limits: Limits): void {
  if (manifest.descriptors > limits.MAX_MANIFEST_DESCRIPTORS) {
    throw exceeded("MANIFEST_INVALID", `a manifest of ${manifest.descriptors} descriptors`, "MAX_MANIFEST_DESCRIPTORS", limits);
  }
  // Only a referrer's annotations are copied, into its row and every referrers page that lists it.
  if (manifest.subject && manifest.annotations) {
    const bytes = Object.entries(manifest.annotations).reduce((sum, [key, value]) => sum + utf8Length(key) + utf8Length(value), 0);
    if (bytes > limits.MAX_ANNOTATION_BYTES) {
      throw exceeded("MANIFEST_INVALID", `annotations of ${bytes} UTF-8 bytes`, "MAX_ANNOTATION_BYTES", limits);
    }
  }
}

// A referrers response is an image index: its descriptors joined between these, as JSON.stringify of the whole would write it.
const REFERRERS_HEAD = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex }).slice(0, -1) + ',"manifests":[';
const REFERRERS_TAIL = "]}";

/** A referrers response: an image index of `descriptors`, the JSON texts of its descriptors joined by commas. */
export function referrersIndex(descriptors: string): string {
  return REFERRERS_HEAD + descriptors + REFERRERS_TAIL;
}

/**
 * The most UTF-8 bytes a page's descriptors, joined by commas, may have for
 * its index to stay within MAX_REFERRERS_PAGE_BYTES. A page holds at least
 * one descriptor whatever its size, so a client following the Link always moves on.
 */
export function referrersPageBudget(limits: Limits): number {
  // Both are ASCII: a character is a byte.
  return limits.MAX_REFERRERS_PAGE_BYTES - REFERRERS_HEAD.length - REFERRERS_TAIL.length;
}

/** How many of `descriptors` (JSON texts, in order) a page takes: as many as fit in `budget` UTF-8 bytes joined by commas, and at least one. */
export function descriptorsThatFit(descriptors: readonly string[], budget: number): number {
  let size = -1;
  for (const [i, descriptor] of descriptors.entries()) {
    size += utf8Length(descriptor) + 1;
    if (i > 0 && size > budget) return i;
  }
  return descriptors.length;
}

const NON_ASCII = /[^\x00-\x7f]/;

/** The UTF-8 length of JSON text without encoding it: JSON.stringify leaves no lone surrogates, so each pair is 4 bytes. */
function utf8Length(text: string): number {
  // Most descriptors are ASCII, where a regex scan beats the loop below.
  if (!NON_ASCII.test(text)) return text.length;
  let length = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    // Two bytes below U+0800 and one more per surrogate (a pair's two units make four), three for the rest of the BMP.
    length += code < 0x800 || (code >= 0xd800 && code <= 0xdfff) ? 1 : 2;
  }
  return length;
}
