/** Grants and robot scopes as the command line writes them: `team=push, shared-*=pull`. */
export function formatGrants(grants) {
  return grants.map(({ pattern, role }) => `${pattern}=${role}`).join(", ");
}

/** Rows of cells as aligned columns. */
export function table(rows) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd());
}

/** The day of an ISO time, as ISO writes it. */
export function day(time) {
  return time.slice(0, 10);
}
