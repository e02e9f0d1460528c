import { usageFailure } from "./failure.mjs";
import { table } from "./text.mjs";

/** Each setting: its option, as the command line writes it, and its field in the API. */
const SETTINGS = [{ option: "immutable-tags", field: "immutableTags" }];

function onOff(option, text) {
  if (text !== "on" && text !== "off") throw usageFailure(`--${option} ${text}: write on or off`);
  return text === "on";
}

/** A policy's settings as the command line writes them: `immutable-tags=on`. */
function formatSettings(settings) {
  return SETTINGS.filter(({ field }) => settings[field] !== undefined)
    .map(({ option, field }) => `${option}=${settings[field] ? "on" : "off"}`)
    .join(", ");
}

export const policies = {
  title:
    "Policies: settings for the namespaces a pattern matches (* stands for any run of name characters).\n" +
    "Where several match a namespace the most restrictive wins (immutable tags if any says on);\n" +
    "where none sets a setting, the default from the Worker's vars applies (IMMUTABLE_TAGS)",
  commands: [
    {
      words: ["policy", "set"],
      args: ["<pattern>"],
      flags: "--immutable-tags on|off",
      options: SETTINGS.map(({ option }) => option),
      summary:
        "Sets the settings given on a pattern's policy, creating it; those not given stay as they were.\n" +
        "--immutable-tags on: a pushed tag keeps its digest; pushing it to another one, or deleting it, is refused.",
      async run({ api, args: [pattern], options }) {
        const settings = Object.fromEntries(SETTINGS.filter(({ option }) => options[option] !== undefined).map(({ option, field }) => [field, onOff(option, options[option])]));
        if (Object.keys(settings).length === 0) throw usageFailure("policy set needs a setting, e.g. --immutable-tags on");
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
