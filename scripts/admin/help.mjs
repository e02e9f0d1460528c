import { LOCAL_URL } from "./target.mjs";

/** How a command is written: `robot add <name> --scope <pattern>=<role>... [--days N]`. */
export function usageOf(command) {
  return [...command.words, ...command.args, command.flags].filter(Boolean).join(" ");
}

/** `npm run admin -- help`: every command of every group, then the options that pick the registry and the output. */
export function helpText(groups) {
  const commands = groups.flatMap((group) => [
    "",
    group.title,
    ...group.commands.flatMap((command) => [`  ${usageOf(command)}`, ...command.summary.split("\n").map((line) => `      ${line}`)]),
  ]);
  return [
    "Usage: npm run admin -- <command> [--url URL | --remote URL] [--json]",
    "",
    "Administers a registry through its HTTP API (/admin/): users, grants, robots, public namespaces, policies.",
    ...commands,
    "",
    "Which registry",
    `  (default)     the local registry that npm start serves, ${LOCAL_URL}, as the administrator in .dev.vars`,
    "  --url URL     a local registry elsewhere (npm start -- --port 5000), as the same administrator",
    "  --remote URL  a deployed registry (or set REGISTRY_URL), as the administrator that the environment",
    "                variables ADMIN_USERNAME and ADMIN_PASSWORD name: never options, so that the password",
    "                stays out of shell history (read -rs ADMIN_PASSWORD && export ADMIN_PASSWORD)",
    "",
    "Output",
    "  --json        the API's JSON answer instead of sentences ({} where it answers with no body)",
    "",
    "Examples",
    "  npm run admin -- user add alice",
    "  npm run admin -- grant alice team push",
    "  npm run admin -- robot add ci --scope team=push --days 30",
    "  npm run admin -- namespace public team",
    "  npm run admin -- policy set 'release-*' --immutable-tags on",
    "  npm run admin -- policy set ci --delete-untagged-after-days 14 --keep-tags 20 --keep-tags-matching 'pr-*'",
    "  npm run admin -- --remote https://registry.example.com user list",
  ].join("\n");
}
