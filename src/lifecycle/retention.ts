import type { LifecycleStorage } from "../storage";
import type { PolicyDefaults } from "../storage/policies";
import { MAX_KEEP_RULES, type RepositoryRetention } from "../storage/retention";
import type { Budget } from "./budget";
import type { Step } from "./pass";

const DAY_MS = 24 * 60 * 60 * 1000;
// Repositories read per query: those where retention applies, in name order.
const PAGE = 100;

export interface RetentionSummary {
  /** The repository the run began after ("": the first), and the one it finished last ("": it went round to the end of a cycle). */
  from: string;
  to: string;
  repositories: number;
  tagsDeleted: number;
  manifestsDeleted: number;
}

/**
 * Retention, a step of the lifecycle pass: repository by repository, in name
 * order from where the last run stopped and round again, the keep-tags rules
 * delete tags beyond the newest, then untagged manifests past their days go
 * with their referrers. A repository is done when a batch finds nothing more
 * to delete; the cursor moves past it only then, so a run that stops halfway
 * through one does it again next time, finding only what is left.
 */
export function retention(storage: LifecycleStorage, defaults: PolicyDefaults, { now, batchSize }: { now: number; batchSize: number }): Step<RetentionSummary> {
  const { cursors, retention: store } = storage;

  /** Applies a repository's retention; false when the budget ran out first. */
  async function retain(target: RepositoryRetention, budget: Budget, summary: RetentionSummary): Promise<boolean> {
    if (target.keepRules.length > MAX_KEEP_RULES) {
      console.warn({ event: "retention", repository: target.repository, warning: `${target.keepRules.length} keep-tags rules match; its tags are left alone above ${MAX_KEEP_RULES}` });
    } else if (target.keepRules.some((rule) => rule.keep > 0)) {
      let deleted: number;
      do {
        if (!budget.take()) return false;
        deleted = await store.trimTags(target.repository, target.keepRules, defaults.immutableTags, batchSize);
        summary.tagsDeleted += deleted;
      } while (deleted === batchSize);
    }
    if (target.untaggedDays > 0) {
      // Until a batch finds nothing: deleting an index frees its children, which the next batch may take.
      let deleted: number;
      do {
        if (!budget.take()) return false;
        deleted = (await store.deleteUntagged(target.repository, now - target.untaggedDays * DAY_MS, batchSize)).length;
        summary.manifestsDeleted += deleted;
      } while (deleted > 0);
    }
    return true;
  }

  return {
    name: "retention",
    async run(budget) {
      const summary: RetentionSummary = { from: "", to: "", repositories: 0, tagsDeleted: 0, manifestsDeleted: 0 };
      if (!budget.take()) return summary;
      const start = await cursors.get("retention");
      summary.from = summary.to = start;
      // The ring of repositories: after the start to the end, then from the first up to the start.
      let range: { after: string; upTo: string | null } = { after: start, upTo: null };
      let round = false;
      pages: while (budget.take()) {
        const page = await store.repositories(range, defaults, PAGE);
        for (const target of page) {
          if (!(await retain(target, budget, summary))) break pages;
          summary.to = target.repository;
          summary.repositories++;
        }
        if (page.length === PAGE) range = { ...range, after: page.at(-1)!.repository };
        else if (range.upTo === null && start !== "") range = { after: "", upTo: start };
        else {
          round = true;
          break;
        }
      }
      if (round) summary.to = "";
      if (summary.to !== start) {
        budget.takeLast();
        await cursors.set("retention", summary.to);
      }
      return summary;
    },
  };
}
