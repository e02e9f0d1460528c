import { usageFailure } from "./failure.mjs";

// Decimal units as disks and clouds count them, binary ones as memory does.
const UNITS = { b: 1, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3, tb: 1000 ** 4, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 };
const SHOWN = [["TiB", 1024 ** 4], ["TB", 1000 ** 4], ["GiB", 1024 ** 3], ["GB", 1000 ** 3], ["MiB", 1024 ** 2], ["MB", 1000 ** 2], ["KiB", 1024], ["kB", 1000]];

/** A size as people write it, "5MB", "1.5 GiB", "4096", or "none"; the option's name is for the error. */
export function parseSize(option, text) {
  if (text === "none") return text;
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match && UNITS[(match[2] || "b").toLowerCase()];
  const bytes = unit && Math.round(Number(match[1]) * unit);
  if (!bytes || bytes < 1) throw usageFailure(`--${option} ${text}: write a size such as 5MB, 512KiB, 2GB or 4096 (bytes), or none`);
  return bytes;
}

/** Bytes as the API counts them, in the largest unit that writes them exactly (to a tenth): "5 MB", "8 MiB", "5000001 bytes". */
export function formatSize(bytes) {
  if (typeof bytes !== "number") return String(bytes);
  for (const [unit, size] of SHOWN) {
    const amount = bytes / size;
    if (amount >= 1 && Number.isInteger(amount * 10)) return `${amount} ${unit}`;
  }
  return `${bytes} bytes`;
}
