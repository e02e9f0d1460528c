// `npm run admin -- <command>`: administers a registry through its HTTP API
// (src/routes/admin.ts). `npm run admin -- help` lists the commands.
import process from "node:process";
import { parseArgs } from "node:util";
import { AdminApi } from "./admin/api.mjs";
import { Failure, usageFailure } from "./admin/failure.mjs";
import { grants } from "./admin/grants.mjs";
import { helpText, usageOf } from "./admin/help.mjs";
import { keys } from "./admin/keys.mjs";
import { namespaces } from "./admin/namespaces.mjs";
import { policies } from "./admin/policies.mjs";
import { robots } from "./admin/robots.mjs";
import { targetOf } from "./admin/target.mjs";
import { usage } from "./admin/usage.mjs";
import { users } from "./admin/users.mjs";

const GROUPS = [users, grants, robots, namespaces, policies, usage, keys];
const COMMANDS = GROUPS.flatMap((group) => group.commands);

/** Every option any command takes; each command says which of the rest are its own. */
const OPTIONS = {
  url: { type: "string" },
  remote: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  password: { type: "string" },
  admin: { type: "boolean" },
  scope: { type: "string", multiple: true },
  days: { type: "string" },
  "immutable-tags": { type: "string" },
  "delete-untagged-after-days": { type: "string" },
  "keep-tags": { type: "string" },
  "keep-tags-matching": { type: "string" },
  "max-blob-size": { type: "string" },
  "max-manifest-size": { type: "string" },
  "max-storage": { type: "string" },
  "max-repositories": { type: "string" },
};
const EVERY_COMMAND_TAKES = ["url", "remote", "json", "help"];

/** Runs the command that `argv` names; returns what to print. */
async function main(argv, env) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (error) {
    throw usageFailure(error.message);
  }
  const { values: options, positionals } = parsed;
  if (options.help || positionals.length === 0 || positionals[0] === "help") return helpText(GROUPS);

  const command = COMMANDS.find((candidate) => candidate.words.every((word, i) => positionals[i] === word));
  if (!command) throw usageFailure(`no command ${positionals.join(" ")}`);
  const args = positionals.slice(command.words.length);
  // Arguments in brackets may be left out.
  const required = command.args.filter((arg) => !arg.startsWith("["));
  if (args.length < required.length || args.length > command.args.length) throw usageFailure(`usage: npm run admin -- ${usageOf(command)}`);
  const foreign = Object.keys(options).find((option) => !EVERY_COMMAND_TAKES.includes(option) && !command.options?.includes(option));
  if (foreign) throw usageFailure(`${command.words.join(" ")} takes no --${foreign}`);

  const api = command.offline ? undefined : new AdminApi(targetOf(options, env));
  const { answer, text } = await command.run({ api, args, options, env });
  return options.json ? JSON.stringify(answer, null, 2) : text.join("\n");
}

try {
  console.log(await main(process.argv.slice(2), process.env));
} catch (error) {
  if (!(error instanceof Failure)) throw error;
  console.error(`admin: ${error.message}`);
  process.exitCode = error.status;
}
