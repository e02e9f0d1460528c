import { formatSize } from "./sizes.mjs";
import { table } from "./text.mjs";

/** A quota as the API reports it: its value and what sets it, or null for none. */
function formatLimit(limit, format) {
  if (!limit) return "no limit";
  const source = limit.source.policy === undefined ? `var ${limit.source.variable}` : `policy ${limit.source.policy}`;
  return `${format(limit.value)} (${source})`;
}

export const usage = {
  title: "Storage usage: the bytes each namespace and repository holds (blobs linked, a shared blob in each holder, and manifests)",
  commands: [
    {
      words: ["usage"],
      args: ["[namespace]"],
      summary: "Lists every namespace's bytes and repositories; with a namespace, its quotas and each repository's bytes.",
      async run({ api, args: [namespace] }) {
        if (namespace === undefined) {
          const answer = await api.call("GET", ["usage"]);
          const rows = answer.namespaces.map((n) => [n.namespace, formatSize(n.bytes), `${n.repositories} repositories`]);
          return { answer, text: rows.length === 0 ? ["Nothing stored yet."] : table(rows) };
        }
        const answer = await api.call("GET", ["usage", namespace]);
        const { limits } = answer;
        return {
          answer,
          text: [
            `${namespace}: ${formatSize(answer.bytes)} of ${formatLimit(limits.maxStorageBytes, formatSize)}, ${answer.repositories} repositories of ${formatLimit(limits.maxRepositories, String)}`,
            `Largest blob: ${formatLimit(limits.maxBlobBytes, formatSize)}; largest manifest: ${formatLimit(limits.maxManifestBytes, formatSize)}`,
            ...(answer.repositoryUsage.length === 0 ? [] : table(answer.repositoryUsage.map((r) => [`  ${r.repository}`, formatSize(r.bytes)]))),
          ],
        };
      },
    },
  ],
};
