/**
 * The registry's cost meter as the client sees it: with COST_HEADER=on every
 * response of ours carries `Registry-Cost: {"d1Queries":n,...}`, the billable
 * operations that request caused. A client operation (a pull that follows a
 * redirect, a push of POST, PATCH, PUT) is several requests: each runs in its
 * own async scope, so the client can file every response's cost under the
 * operation that made it, however many run at once.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { median } from "./stats.mjs";

export const COST_FIELDS = ["d1Queries", "d1RowsRead", "d1RowsWritten", "r2ClassA", "r2ClassB", "doRequests", "doRowsRead", "doRowsWritten", "bytesIn", "bytesOut"];

const current = new AsyncLocalStorage();

/** Runs fn as one client operation; returns its result and the responses it saw, each { label, status, cost|null }. */
export async function asOperation(fn) {
  const hops = [];
  const result = await current.run(hops, fn);
  return { result, hops };
}

function parseCost(header) {
  if (header === null) return null;
  let parsed;
  try {
    parsed = JSON.parse(header);
  } catch {
    throw new Error(`Registry-Cost is not JSON: ${header.slice(0, 200)}`);
  }
  const missing = COST_FIELDS.filter((field) => !Number.isFinite(parsed[field]));
  if (missing.length > 0) throw new Error(`Registry-Cost lacks ${missing.join(", ")}: ${header.slice(0, 200)}`);
  return Object.fromEntries(COST_FIELDS.map((field) => [field, parsed[field]]));
}

const isRedirect = (status) => status >= 300 && status < 400;

/** Files a response under the running operation (outside one, it is not counted). `label` names the hop ("PATCH", "final"); a redirect is named by its status. */
export function noteResponse(label, response) {
  const cost = parseCost(response.headers.get("registry-cost"));
  current.getStore()?.push({ label: isRedirect(response.status) ? String(response.status) : label, status: response.status, cost });
}

function sum(costs) {
  const total = Object.fromEntries(COST_FIELDS.map((field) => [field, 0]));
  for (const cost of costs) for (const field of COST_FIELDS) total[field] += cost[field];
  return total;
}

function fieldMedian(costs) {
  return Object.fromEntries(COST_FIELDS.map((field) => [field, median(costs.map((cost) => cost[field]))]));
}

/**
 * What one client operation costs: the field-wise median over the operations
 * (of every round) of their summed costs, and of each hop's when they have
 * several kinds. Null when no response carried the header (a registry without
 * the meter, or COST_HEADER off).
 */
export function summarizeCosts(operations) {
  const metered = operations.filter((hops) => hops.length > 0 && hops.every((hop) => hop.cost !== null));
  if (metered.length === 0) return null;
  const labels = [...new Set(metered.flatMap((hops) => hops.map((hop) => hop.label)))];
  return {
    total: fieldMedian(metered.map((hops) => sum(hops.map((hop) => hop.cost)))),
    hops: labels.length > 1 ? labels.map((label) => ({ label, cost: fieldMedian(metered.map((hops) => sum(hops.filter((h) => h.label === label).map((h) => h.cost)))) })) : [],
    operations: metered.length,
    unmetered: operations.length - metered.length,
  };
}

const count = (n) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

function bytes(n) {
  if (n >= 2 ** 20) return `${count(n / 2 ** 20)} MiB`;
  if (n >= 1024) return `${count(n / 1024)} KiB`;
  return `${count(n)} B`;
}

/** A cost in a few words: `D1 1q 1r 0w · R2 0A 1B · DO 0 · 64 KiB out`; groups that are all zero are left out. */
export function formatCost(cost) {
  const parts = [];
  if (cost.d1Queries || cost.d1RowsRead || cost.d1RowsWritten) parts.push(`D1 ${count(cost.d1Queries)}q ${count(cost.d1RowsRead)}r ${count(cost.d1RowsWritten)}w`);
  if (cost.r2ClassA || cost.r2ClassB) parts.push(`R2 ${count(cost.r2ClassA)}A ${count(cost.r2ClassB)}B`);
  if (cost.doRequests || cost.doRowsRead || cost.doRowsWritten) parts.push(`DO ${count(cost.doRequests)}req ${count(cost.doRowsRead)}r ${count(cost.doRowsWritten)}w`);
  if (cost.bytesIn) parts.push(`${bytes(cost.bytesIn)} in`);
  if (cost.bytesOut) parts.push(`${bytes(cost.bytesOut)} out`);
  return parts.length > 0 ? parts.join(" · ") : "nothing billable";
}

/** The meter column: the sum per operation, and each hop's share when there are several kinds. */
export function formatSummary(summary) {
  if (!summary) return "n/a";
  const hops = summary.hops.length > 0 ? ` (${summary.hops.map((h) => `${h.label}: ${formatCost(h.cost)}`).join("; ")})` : "";
  return `${formatCost(summary.total)}${hops}`;
}
