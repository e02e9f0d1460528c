/**
 * Values remembered for a while in the isolate's memory, so a hot path (a
 * verified login, whether a namespace is public, a manifest pulled by digest,
 * a page of tags) does not pay a password hash, a D1 query or a cache read on
 * every request. Bounded: by the number of entries, or by what `weigh` says
 * each holds (its size, say); the oldest entries go first.
 */
export class Memo<V> {
  readonly #entries = new Map<string, { value: V; until: number; weight: number }>();
  #weight = 0;

  constructor(
    private readonly seconds: number,
    private readonly capacity = 10_000,
    private readonly weigh: (value: V) => number = () => 1,
  ) {}

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.until > Date.now()) return entry.value;
    this.delete(key);
    return undefined;
  }

  /** Remembers `value` for the memo's time, or until `ends` (milliseconds since the epoch) if that is sooner. */
  set(key: string, value: V, ends = Infinity): void {
    this.delete(key);
    const weight = this.weigh(value);
    for (const oldest of this.#entries.keys()) {
      if (this.#weight + weight <= this.capacity) break;
      this.delete(oldest);
    }
    this.#entries.set(key, { value, until: Math.min(ends, Date.now() + this.seconds * 1000), weight });
    this.#weight += weight;
  }

  delete(key: string): void {
    this.#weight -= this.#entries.get(key)?.weight ?? 0;
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
    this.#weight = 0;
  }
}
