import { usageFailure } from "./failure.mjs";
import { day, formatGrants, table } from "./text.mjs";

/** `--scope team=push` as the API takes it; a pattern holds no `=`, so the last one splits. */
function scopeOf(text) {
  const split = text.lastIndexOf("=");
  if (split <= 0 || split === text.length - 1) throw usageFailure(`--scope ${text}: write <pattern>=<role>, e.g. --scope team=push`);
  return { pattern: text.slice(0, split), role: text.slice(split + 1) };
}

function daysOf(text) {
  if (!/^\d+$/.test(text)) throw usageFailure(`--days ${text}: a whole number of days`);
  return Number(text);
}

/** Where a robot stands: revoked, expired, or until when it works. */
function stateOf(robot) {
  if (robot.revokedAt !== null) return `revoked ${day(robot.revokedAt)}`;
  return Date.parse(robot.expiresAt) <= Date.now() ? `expired ${day(robot.expiresAt)}` : `until ${day(robot.expiresAt)}`;
}

export const robots = {
  title: "Robots: logins for CI, a token with scopes instead of a password",
  commands: [
    {
      words: ["robot", "add"],
      args: ["<name>"],
      flags: "--scope <pattern>=<role>... [--days N]",
      options: ["scope", "days"],
      summary: "Creates a robot with one or more scopes, valid N days (90 unless told); prints its token, the only time it is shown.",
      async run({ api, args: [name], options }) {
        if (options.scope === undefined) throw usageFailure("robot add needs at least one --scope <pattern>=<role>, e.g. --scope team=push");
        const days = options.days === undefined ? {} : { days: daysOf(options.days) };
        const robot = await api.call("POST", ["robots"], { name, scopes: options.scope.map(scopeOf), ...days });
        return {
          answer: robot,
          text: [
            `Created robot ${robot.name} with ${formatGrants(robot.scopes)}, valid until ${robot.expiresAt}.`,
            "Its token, shown only once: store it now (if it is lost, revoke the robot and create another):",
            "",
            `  ${robot.token}`,
            "",
            "It logs in as the robot's password, e.g. from a CI secret REGISTRY_TOKEN:",
            `  echo "$REGISTRY_TOKEN" | docker login ${api.host} -u ${robot.name} --password-stdin`,
          ],
        };
      },
    },
    {
      words: ["robot", "revoke"],
      args: ["<name>"],
      summary: "Stops a robot's token from logging in (registry tokens it already holds expire within 5 minutes).",
      async run({ api, args: [name] }) {
        return { answer: await api.call("DELETE", ["robots", name]), text: [`Revoked robot ${name}: its token logs in no more.`] };
      },
    },
    {
      words: ["robot", "list"],
      args: [],
      summary: "Lists the robots with their scopes and expiry, never their tokens.",
      async run({ api }) {
        const answer = await api.call("GET", ["robots"]);
        const rows = answer.robots.map((robot) => [robot.name, formatGrants(robot.scopes), stateOf(robot)]);
        return { answer, text: rows.length === 0 ? ["No robots yet."] : table(rows) };
      },
    },
  ],
};
