/**
 * What one run of the lifecycle pass may spend: D1 calls and wall time.
 * Workers cap the subrequests of one invocation (each D1 call is one; on the
 * Paid plan 1,000 D1 queries, on Free 50) and a run should end well before the
 * next cron fires. The last call is held back: a step always gets to record
 * where it stopped.
 */
export class Budget {
  #calls: number;

  constructor(
    calls: number,
    private readonly deadline: number,
  ) {
    this.#calls = calls;
  }

  /** Takes a call for work; false when only the held-back call is left or time is up. */
  take(): boolean {
    if (this.#calls <= 1 || Date.now() >= this.deadline) return false;
    this.#calls--;
    return true;
  }

  /** Takes the held-back call, to record progress. */
  takeLast(): void {
    this.#calls--;
  }

  /** Sets aside an even part of what is left for one of `steps` steps still to run; `settle` takes back what it did not spend. */
  share(steps: number): Budget {
    const calls = Math.floor(this.#calls / steps);
    this.#calls -= calls;
    return new Budget(calls, this.deadline);
  }

  settle(share: Budget): void {
    this.#calls += share.#calls;
    share.#calls = 0;
  }
}
