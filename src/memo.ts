/**
 * Values remembered for a while in the isolate's memory, so a hot path (a
 * verified login, whether a namespace is public, a manifest pulled by digest)
 * does not pay a password hash, a D1 query or a cache read on every request.
 * Bounded: the oldest entries go first.
 */
export class Memo<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly seconds: number,
    private readonly capacity = 10_000,
  ) {}

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.until > Date.now()) return entry.value;
    this.#entries.delete(key);
    return undefined;
  }

  /** Remembers `value` for the memo's time, or until `ends` (milliseconds since the epoch) if that is sooner. */
  set(key: string, value: V, ends = Infinity): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { value, until: Math.min(ends, Date.now() + this.seconds * 1000) });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}
