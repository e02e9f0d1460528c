import type { Database } from "./database";

/**
 * A request's billable operations (and the bytes it moved), by Cloudflare's
 * published prices: D1 bills rows read and written; R2 Class A (put, list,
 * multipart create, part and complete) and Class B (get, head), delete and
 * abort free; a Durable Object each request (every RPC call) and, for
 * SQLite-backed storage, rows read and written.
 */
export interface Cost {
  d1Queries: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  /** The size of the rows D1 answered: not billed, but what crosses from D1 to the Worker (the benchmark's floor brings as much). */
  d1ResultBytes: number;
  r2ClassA: number;
  r2ClassB: number;
  doRequests: number;
  doRowsRead: number;
  doRowsWritten: number;
  /** Request body bytes read, by the Worker or by a Durable Object it handed the body to. */
  bytesIn: number;
  /** Response body bytes, as the response's Content-Length announces them. */
  bytesOut: number;
}

/** What one request, or one Durable Object call, cost so far. */
export class Meter {
  readonly cost: Cost = {
    d1Queries: 0,
    d1RowsRead: 0,
    d1RowsWritten: 0,
    d1ResultBytes: 0,
    r2ClassA: 0,
    r2ClassB: 0,
    doRequests: 0,
    doRowsRead: 0,
    doRowsWritten: 0,
    bytesIn: 0,
    bytesOut: 0,
  };

  count(kind: keyof Cost, n = 1): void {
    this.cost[kind] += n;
  }

  /** Adds what another meter counted (a Durable Object's answer). */
  add(cost: Cost): void {
    for (const kind of Object.keys(this.cost) as (keyof Cost)[]) this.cost[kind] += cost[kind];
  }
}

/** An answer together with what producing it cost, for a caller that meters the request (a Durable Object's RPC answer). */
export interface Metered<T> {
  result: T;
  cost: Cost;
}

/**
 * D1, counting each statement run, alone or in a batch, with the rows it read
 * and wrote. `db` may be a function that opens it on first use (a request's
 * D1 session, which many requests never need).
 */
export function meterD1(db: Database | (() => Database), meter: Meter): Database {
  const open = typeof db === "function" ? db : () => db;
  return {
    prepare: (query) => new MeteredStatement(open().prepare(query), meter),
    batch: async <T>(statements: D1PreparedStatement[]) => {
      // The binding takes only its own statements.
      const results = await open().batch<T>(statements.map((s) => (s instanceof MeteredStatement ? s.inner : s)));
      for (const result of results) countQuery(meter, result);
      return results;
    },
  };
}

function countQuery(meter: Meter, { meta, results }: D1Result<unknown>): void {
  meter.count("d1Queries");
  meter.count("d1RowsRead", meta.rows_read);
  meter.count("d1RowsWritten", meta.rows_written);
  meter.count("d1ResultBytes", sizeOfRows(results));
}

/** Text by its length (the page and manifest texts the registry reads are ASCII or nearly), a blob by its bytes, a number as 8. */
function sizeOfRows(rows: unknown[]): number {
  let size = 0;
  for (const row of rows as Record<string, unknown>[]) {
    for (const value of Object.values(row)) {
      if (typeof value === "string") size += value.length;
      else if (typeof value === "number") size += 8;
      else if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) size += value.byteLength;
      else if (Array.isArray(value)) size += value.length;
    }
  }
  return size;
}

/** first() and raw() return no meta, so first() is answered from all(), which does (D1's first() does not add LIMIT 1 either). */
class MeteredStatement implements D1PreparedStatement {
  constructor(
    readonly inner: D1PreparedStatement,
    private readonly meter: Meter,
  ) {}

  bind(...values: unknown[]): D1PreparedStatement {
    return new MeteredStatement(this.inner.bind(...values), this.meter);
  }

  first<T = unknown>(column: string): Promise<T | null>;
  first<T = Record<string, unknown>>(): Promise<T | null>;
  async first<T>(column?: string): Promise<T | null> {
    const [row] = (await this.all<Record<string, unknown>>()).results;
    if (!row) return null;
    if (column === undefined) return row as T;
    if (!(column in row)) throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${column})`);
    return row[column] as T;
  }

  async run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    const result = await this.inner.run<T>();
    countQuery(this.meter, result);
    return result;
  }

  async all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    const result = await this.inner.all<T>();
    countQuery(this.meter, result);
    return result;
  }

  raw<T = unknown[]>(options: { columnNames: true }): Promise<[string[], ...T[]]>;
  raw<T = unknown[]>(options?: { columnNames?: false }): Promise<T[]>;
  raw(): Promise<never> {
    // Its rows read and written are unknowable, and rows from all() lose columns that share a name.
    return Promise.reject(new Error("raw() cannot be metered (D1 returns no row counts with it): use all()"));
  }
}

/** R2, counting each operation in its price class. */
export function meterR2(bucket: R2Bucket, meter: Meter): R2Bucket {
  const classA = () => meter.count("r2ClassA");
  const classB = () => meter.count("r2ClassB");
  return {
    head: counting(bucket, bucket.head, classB),
    get: counting(bucket, bucket.get, classB),
    put: counting(bucket, bucket.put, classA),
    list: counting(bucket, bucket.list, classA),
    delete: (keys) => bucket.delete(keys),
    createMultipartUpload: async (key, options) => {
      classA();
      return meterMultipart(await bucket.createMultipartUpload(key, options), classA);
    },
    // Only names an upload: no operation until a part, a completion or an abort.
    resumeMultipartUpload: (key, uploadId) => meterMultipart(bucket.resumeMultipartUpload(key, uploadId), classA),
  };
}

function meterMultipart(upload: R2MultipartUpload, classA: () => void): R2MultipartUpload {
  return {
    key: upload.key,
    uploadId: upload.uploadId,
    uploadPart: counting(upload, upload.uploadPart, classA),
    complete: counting(upload, upload.complete, classA),
    abort: () => upload.abort(),
  };
}

/** `method` called on `target`, counted first; typed as the method, overloads and all. */
function counting<F extends (...args: never[]) => unknown>(target: object, method: F, count: () => void): F {
  return ((...args: Parameters<F>) => {
    count();
    return method.apply(target, args);
  }) as F;
}
