import type { LifecycleStorage } from "../storage";
import { linkPositionOf, storedLinkPosition, type LinkPosition, type MarkedPage, type SweptBatch } from "../storage/gc";
import type { Budget } from "./budget";
import type { Step } from "./pass";

// The most keys one R2 delete takes.
const R2_DELETE_KEYS = 1000;

export interface MarkSummary {
  /** Rows looked at, and whether the mark reached the end of the table (the next run starts again from the first). */
  looked: number;
  round: boolean;
}

export interface SweepSummary {
  deleted: number;
}

export interface IntentSummary {
  objectsDeleted: number;
  /** Expired intents looked at: their objects deleted, or published by their writers. */
  intents: number;
}

export interface GcSettings {
  /** The pass's now. */
  now: number;
  batchSize: number;
  /** How long a link or blob stays unused before it goes. */
  graceMs: number;
}

/**
 * A mark of one table as a step: batch after batch from where the last run
 * stopped to the end of the table, then from the start next run.
 */
function mark<Position>(
  name: string,
  cursors: LifecycleStorage["cursors"],
  codec: { parse(stored: string): Position; store(position: Position): string; start: Position },
  batch: (after: Position) => Promise<MarkedPage<Position>>,
  batchSize: number,
): Step<MarkSummary> {
  return {
    name,
    async run(budget) {
      const summary = { looked: 0, round: false };
      if (!budget.take()) return summary;
      const stored = await cursors.get(name);
      let position = stored === "" ? codec.start : codec.parse(stored);
      while (budget.take()) {
        const page = await batch(position);
        summary.looked += page.rows;
        if (page.rows < batchSize) {
          summary.round = true;
          break;
        }
        position = page.last!;
      }
      const next = summary.round ? "" : codec.store(position);
      if (next !== stored) {
        budget.takeLast();
        await cursors.set(name, next);
      }
      return summary;
    },
  };
}

/** A sweep as a step: due candidates batch by batch, oldest first, until none is left. */
function sweep(name: string, batch: () => Promise<SweptBatch>, batchSize: number): Step<SweepSummary> {
  return {
    name,
    async run(budget) {
      const summary = { deleted: 0 };
      while (budget.take()) {
        const swept = await batch();
        summary.deleted += swept.deleted;
        if (swept.weighed < batchSize) break;
      }
      return summary;
    },
  };
}

/**
 * Garbage collection, steps of the lifecycle pass in this order: mark links,
 * sweep links, mark blobs, sweep blobs, free the objects of expired intents.
 * A link unreferenced for the grace window goes; a blob whose last link went
 * goes a grace window later, its key recorded as an intent in the same
 * transaction; the last step deletes the objects of intents no D1 row points
 * at (those blobs, manifests' R2 objects, uploads that never published).
 * Within one pass with a grace of 0, a deleted manifest's unshared blobs are
 * freed.
 */
export function garbageCollection(storage: LifecycleStorage, { now, batchSize, graceMs }: GcSettings): Step[] {
  const { cursors, gc } = storage;
  const linkCodec = { parse: linkPositionOf, store: storedLinkPosition, start: { repository: "", digest: "" } as LinkPosition };
  const digestCodec = { parse: (stored: string) => stored, store: (digest: string) => digest, start: "" };
  return [
    mark("gc-mark-links", cursors, linkCodec, (after) => gc.markLinks(after, now, batchSize), batchSize),
    sweep("gc-sweep-links", () => gc.sweepLinks(now - graceMs, batchSize), batchSize),
    mark("gc-mark-blobs", cursors, digestCodec, (after) => gc.markBlobs(after, now, batchSize), batchSize),
    sweep("gc-sweep-blobs", () => gc.sweepBlobs(now - graceMs, now, batchSize), batchSize),
    freeIntents(storage, now, Math.min(batchSize, R2_DELETE_KEYS)),
  ];
}

/**
 * The objects of expired intents: one no D1 row points at is deleted from R2,
 * then its intent; one a row points at (its writer published it) just loses
 * its intent.
 */
function freeIntents({ gc }: LifecycleStorage, now: number, batchSize: number): Step<IntentSummary> {
  return {
    name: "gc-intents",
    async run(budget: Budget) {
      const summary = { objectsDeleted: 0, intents: 0 };
      // A batch is three calls: the read, the R2 delete, the D1 delete.
      while (budget.take() && budget.take() && budget.take()) {
        const intents = await gc.expiredIntents(now, batchSize);
        const freed = intents.filter((intent) => !intent.pointed).map((intent) => intent.key);
        await gc.deleteObjects(freed);
        await gc.forgetIntents(
          freed,
          intents.filter((intent) => intent.pointed).map((intent) => intent.key),
        );
        summary.objectsDeleted += freed.length;
        summary.intents += intents.length;
        if (intents.length < batchSize) break;
      }
      return summary;
    },
  };
}
