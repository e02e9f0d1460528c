import type { Meter } from "./meter";

/** The request body broke off (the connection dropped, its chunked encoding was malformed) or ended before its announced length. */
export class IncompleteBody extends Error {
  constructor(readonly received: number) {
    super(`the request body ended after ${received} bytes`);
  }
}

/** The request body brought more bytes than it may. */
export class BodyOverflow extends Error {
  constructor(readonly limit: number) {
    super(`the request body brought more than ${limit} bytes`);
  }
}

export interface Filled {
  /** The buffer read into: the same memory, handed back by the runtime under a new view. */
  buffer: Uint8Array;
  /** How much of it holds bytes. */
  filled: number;
  /** Whether the streams ended. */
  ended: boolean;
}

/**
 * Bytes already stored (an object being read back), then a request body, read
 * into buffers the caller owns: BYOB reads, so the runtime writes each byte
 * straight into the buffer it is used from and nothing is copied on the way.
 * A body that breaks off is an IncompleteBody, one that brings more than
 * `bodyLimit` bytes a BodyOverflow; a failing stored object is the server's
 * own error. Body bytes are counted on `meter` as they are read.
 */
export class ByteSource {
  readonly #streams: { stream: ReadableStream<Uint8Array>; isBody: boolean }[] = [];
  #reader: ReadableStreamBYOBReader | null = null;
  /** Bytes of the request body read so far. */
  bodyBytes = 0;

  constructor(
    stored: ReadableStream<Uint8Array> | null,
    body: ReadableStream<Uint8Array> | null,
    readonly bodyLimit: number,
    private readonly meter: Meter,
  ) {
    if (stored) this.#streams.push({ stream: stored, isBody: false });
    if (body) this.#streams.push({ stream: body, isBody: true });
  }

  /** Reads into `buffer` (a view of a whole ArrayBuffer) from `filled` on, until it is full or the streams end. */
  async fill(buffer: Uint8Array, filled: number): Promise<Filled> {
    while (filled < buffer.length) {
      const current = this.#streams[0];
      if (!current) return { buffer, filled, ended: true };
      this.#reader ??= current.stream.getReader({ mode: "byob" });
      // The runtime fills the whole view before answering, unless the stream ends first.
      const wanted = buffer.length - filled;
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await this.#reader.readAtLeast(wanted, buffer.subarray(filled));
      } catch (error) {
        if (current.isBody) throw new IncompleteBody(this.bodyBytes);
        throw error;
      }
      // The read took the buffer's memory and hands it back in its result.
      if (!result.value) throw new Error("a BYOB read kept its buffer");
      buffer = new Uint8Array(result.value.buffer);
      filled += result.value.length;
      if (current.isBody) {
        this.bodyBytes += result.value.length;
        this.meter.count("bytesIn", result.value.length);
        if (this.bodyBytes > this.bodyLimit) throw new BodyOverflow(this.bodyLimit);
      }
      if (result.done) {
        this.#reader.releaseLock();
        this.#reader = null;
        this.#streams.shift();
      }
    }
    return { buffer, filled, ended: this.#streams.length === 0 };
  }

  /** Reads to the end, which must come before another byte. */
  async end(): Promise<void> {
    let probe: Uint8Array = new Uint8Array(1);
    for (;;) {
      const before = this.bodyBytes;
      const read = await this.fill(probe, 0);
      if (read.filled > 0) throw new BodyOverflow(before);
      if (read.ended) return;
      probe = read.buffer;
    }
  }
}
