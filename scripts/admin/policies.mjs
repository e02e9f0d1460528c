import { usageFailure } from "./failure.mjs";
import { formatSize, parseSize } from "./sizes.mjs";
import { table } from "./text.mjs";

function onOff(option, text) {
  if (text !== "on" && text !== "off") throw usageFailure(`--${option} ${text}: write on or off`);
  return text === "on";
}

/** A positive whole number, or the word that lifts the limit (never, all). */
function countOr(word) {
  return (option, text) => {
    if (text === word) return word;
    if (!/^[1-9][0-9]*$/.test(text)) throw usageFailure(`--${option} ${text}: write a positive whole number or ${word}`);
    return Number(text);
  };
}

/** Each setting: its option, as the command line writes it, its field in the API, and how its text is read and written. */
const SETTINGS = [
  { option: "immutable-tags", field: "immutableTags", parse: onOff, format: (value) => (value ? "on" : "off") },
  { option: "delete-untagged-after-days", field: "deleteUntaggedAfterDays", parse: countOr("never"), format: String },
  { option: "keep-tags", field: "keepTags", parse: countOr("all"), format: String },
  { option: "keep-tags-matching", field: "keepTagsMatching", parse: (_, text) => text, format: String },
  { option: "max-blob-size", field: "maxBlobBytes", parse: parseSize, format: formatSize },
  { option: "max-manifest-size", field: "maxManifestBytes", parse: parseSize, format: formatSize },
  { option: "max-storage", field: "maxStorageBytes", parse: parseSize, format: formatSize },
  { option: "max-repositories", field: "maxRepositories", parse: countOr("none"), format: String },
];

/** A policy's settings as the command line writes them: `immutable-tags=on, keep-tags=10`. */
function formatSettings(settings) {
  return SETTINGS.filter(({ field }) => settings[field] !== undefined)
    .map(({ option, field, format }) => `${option}=${format(settings[field])}`)
    .join(", ");
}

export const policies = {
  title:
    "Policies: settings for the namespaces a pattern matches (* stands for any run of name characters).\n" +
    "Where several match a namespace the most restrictive wins (immutable tags if any says on), and for\n" +
    "retention the most retentive (the most days, never over any; a tag goes only if no rule keeps it), for\n" +
    "quotas the smallest limit (none only where each that sets it says none); where none sets a setting,\n" +
    "the default from the Worker's vars applies (IMMUTABLE_TAGS, RETENTION_*, MAX_BLOB_BYTES, MAX_MANIFEST_BYTES, QUOTA_*)",
  commands: [
    {
      words: ["policy", "set"],
      args: ["<pattern>"],
      flags:
        "--immutable-tags on|off --delete-untagged-after-days N|never --keep-tags K|all [--keep-tags-matching GLOB]\n" +
        "      --max-blob-size SIZE|none --max-manifest-size SIZE|none --max-storage SIZE|none --max-repositories N|none",
      options: SETTINGS.map(({ option }) => option),
      summary:
        "Sets the settings given on a pattern's policy, creating it; those not given stay as they were.\n" +
        "--immutable-tags on: a pushed tag keeps its digest; pushing it to another one, or deleting it, is refused.\n" +
        "--delete-untagged-after-days N: manifests no tag points at (nor an index lists) go N days after their push,\n" +
        "    with their untagged referrers. --keep-tags K: of the tags --keep-tags-matching matches (a GLOB, * unless\n" +
        "    given), the newest K stay and older ones go; others are left alone. Retention runs on the Worker's cron.\n" +
        "--max-blob-size 5MB: larger blobs are refused (413); --max-manifest-size likewise manifests (MAX_MANIFEST_BYTES\n" +
        "    holds too); --max-storage 10GB: a push taking the namespace's bytes past it is refused; --max-repositories N:\n" +
        "    a push creating one more is refused (403). Sizes: B, kB, MB, GB, TB or KiB, MiB, GiB, TiB; none lifts a default.",
      async run({ api, args: [pattern], options }) {
        const given = SETTINGS.filter(({ option }) => options[option] !== undefined);
        const settings = Object.fromEntries(given.map(({ option, field, parse }) => [field, parse(option, options[option])]));
        if (given.length === 0) throw usageFailure("policy set needs a setting, e.g. --immutable-tags on, --keep-tags 10 or --max-blob-size 5MB");
        if (settings.keepTagsMatching !== undefined && settings.keepTags === undefined) throw usageFailure("--keep-tags-matching goes with --keep-tags, e.g. --keep-tags 10 --keep-tags-matching 'v*'");
        return { answer: await api.call("PUT", ["policies", pattern], settings), text: [`Policy on ${pattern}: ${formatSettings(settings)}.`] };
      },
    },
    {
      words: ["policy", "remove"],
      args: ["<pattern>"],
      summary: "Removes a pattern's policy: its namespaces follow the other policies that match them, or the defaults.",
      async run({ api, args: [pattern] }) {
        return { answer: await api.call("DELETE", ["policies", pattern]), text: [`Removed the policy on ${pattern}.`] };
      },
    },
    {
      words: ["policy", "list"],
      args: [],
      summary: "Lists the policies with their settings, then the defaults where none sets a setting.",
      async run({ api }) {
        const answer = await api.call("GET", ["policies"]);
        const rows = answer.policies.map((policy) => [policy.pattern, formatSettings(policy)]);
        return { answer, text: [...(rows.length === 0 ? ["No policies yet."] : table(rows)), `Defaults where no policy sets it: ${formatSettings(answer.defaults)}`] };
      },
    },
  ],
};
