import { configOf } from "../config";
import type { Env } from "../env";
import { createLifecycleStorage } from "../storage";
import { policyDefaultsOf } from "../storage/policies";
import { Budget } from "./budget";
import { garbageCollection } from "./gc";
import { retention } from "./retention";

/** One step of the lifecycle pass: it does what the budget allows, records where it stopped and says what it did. */
export interface Step<Summary = object> {
  name: string;
  run(budget: Budget): Promise<Summary>;
}

export interface LifecycleOptions {
  /** The time the pass takes as now: the cron's scheduled time. */
  now: number;
  /** The most rows one statement deletes. */
  batchSize?: number;
  /** The most D1 calls of the run. */
  calls?: number;
  /** Runs only the steps named, in pass order: lets tests put requests between GC's mark and sweep. */
  only?: string[];
}

// Well within Workers Paid's 1,000 D1 queries per invocation (a batch's statements counted apart), and a run's time well within the 15 minutes between crons.
const CALLS = 200;
const RUN_MS = 30_000;
const BATCH = 100;

export interface LifecycleSummary {
  ms: number;
  steps: Record<string, object>;
}

/**
 * The lifecycle pass that the Cron Trigger runs: its steps in order (retention,
 * then garbage collection's), each with an even part of the run's budget that the steps before
 * it left. A step that runs out stops and resumes there next run.
 */
export async function runLifecycle(env: Env, options: LifecycleOptions): Promise<LifecycleSummary> {
  const started = Date.now();
  const storage = createLifecycleStorage(env);
  const batchSize = options.batchSize ?? BATCH;
  const config = configOf(env);
  const steps: Step[] = [
    retention(storage, policyDefaultsOf(config), { now: options.now, batchSize }),
    ...garbageCollection(storage, { now: options.now, batchSize, graceMs: config.GC_GRACE_SECONDS * 1000 }),
  ].filter((step) => !options.only || options.only.includes(step.name));
  const budget = new Budget(options.calls ?? CALLS, started + RUN_MS);
  const summaries: Record<string, object> = {};
  for (const [i, step] of steps.entries()) {
    const share = budget.share(steps.length - i);
    summaries[step.name] = await step.run(share);
    budget.settle(share);
  }
  return { ms: Date.now() - started, steps: summaries };
}

/** The Worker's scheduled handler: one lifecycle pass, and one log line saying what it did. */
export async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  const summary = await runLifecycle(env, { now: controller.scheduledTime });
  console.log({ event: "lifecycle", cron: controller.cron, scheduledTime: new Date(controller.scheduledTime).toISOString(), ...summary });
}
