import { RegistryError } from "./errors";

/** A byte range inside a blob, already resolved against the blob's size. */
export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * Resolves a blob GET's `Range: bytes=...` header (RFC 9110). Returns undefined
 * when the whole blob should be served: no header, several ranges, or a header
 * this server ignores. Throws RANGE_INVALID (416) when nothing of it exists or
 * it ends before it starts.
 */
export function resolveRange(header: string | undefined, size: number): ByteRange | undefined {
  const match = header?.trim().match(/^bytes=(\d*)-(\d*)$/);
  if (!match) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return undefined;
  const refuse = (why: string) =>
    new RegistryError("RANGE_INVALID", `range ${header} ${why}`, {
      headers: { "Content-Range": `bytes */${size}` },
    });
  const outside = () => refuse(`is outside the blob's ${size} bytes`);
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) throw outside();
    const length = Math.min(suffix, size);
    return { offset: size - length, length };
  }
  const offset = Number(first);
  // Serving the whole blob instead would hand a resuming client bytes it did not ask for.
  if (last !== "" && Number(last) < offset) throw refuse("ends before it starts");
  if (offset >= size) throw outside();
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  return { offset, length: end - offset + 1 };
}

/**
 * Parses an upload PATCH's `Content-Range: <start>-<end>` (the spec's form; a
 * `bytes ` prefix and `/total` suffix are tolerated). Returns the inclusive range.
 */
export function parseContentRange(header: string): { start: number; end: number } {
  const match = header.trim().match(/^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/);
  if (!match) throw new RegistryError("RANGE_INVALID", `malformed Content-Range "${header.slice(0, 100)}"`);
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start || !Number.isSafeInteger(end)) throw new RegistryError("RANGE_INVALID", `invalid Content-Range "${header}"`);
  return { start, end };
}

/** The upload Range header: inclusive bytes received, `0-0` before any (as distribution answers). */
export function uploadRange(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}
