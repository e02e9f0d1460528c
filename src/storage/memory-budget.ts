import { UPLOAD_BUFFER_BUDGET } from "../oci/limits";

/*
 * The upload buffers held in this isolate. Durable Objects of one class can
 * share an isolate, so this is module state, shared by every session the
 * isolate runs: a request that cannot have its buffer is turned away (429)
 * instead of risking the isolate.
 */
let held = 0;

/** Bytes of buffer one request may hold; more can be asked for, and all of it is given back at the end. */
export class Lease {
  #bytes = 0;

  /** Adds `bytes` to the lease if the budget has them and `spare` more, kept free for others. */
  tryGrow(bytes: number, spare = 0): boolean {
    if (held + bytes + spare > UPLOAD_BUFFER_BUDGET) return false;
    held += bytes;
    this.#bytes += bytes;
    return true;
  }

  release(): void {
    held -= this.#bytes;
    this.#bytes = 0;
  }
}

/** A lease of `bytes`, or null when the budget is spent. */
export function leaseBuffers(bytes: number): Lease | null {
  const lease = new Lease();
  return lease.tryGrow(bytes) ? lease : null;
}
