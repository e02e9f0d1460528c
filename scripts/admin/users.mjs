import { randomBytes } from "node:crypto";
import { formatGrants, table } from "./text.mjs";

/** The password given with --password, or a new one that the answer shows once. */
function passwordOf(options) {
  if (options.password !== undefined) return { password: options.password, generated: false };
  return { password: randomBytes(18).toString("base64url"), generated: true };
}

/** The API's answer and a sentence, with a generated password added to both: the only time it is shown. */
function withPassword(chosen, answer, sentence) {
  if (!chosen.generated) return { answer, text: [sentence] };
  return { answer: { ...answer, password: chosen.password }, text: [sentence, `Password (shown only once): ${chosen.password}`] };
}

export const users = {
  title: "Users: they log in with a password, and each owns the namespace of their name",
  commands: [
    {
      words: ["user", "add"],
      args: ["<name>"],
      flags: "[--password P] [--admin]",
      options: ["password", "admin"],
      summary:
        "Creates a user, an administrator with --admin. Without --password one is generated and\n" +
        "printed once; a password given on the command line stays in shell history.",
      async run({ api, args: [name], options }) {
        const chosen = passwordOf(options);
        const created = await api.call("POST", ["users"], { name, password: chosen.password, admin: options.admin ?? false });
        return withPassword(chosen, created, `Created ${created.admin ? "administrator" : "user"} ${created.name}.`);
      },
    },
    {
      words: ["user", "password"],
      args: ["<name>"],
      flags: "[--password P]",
      options: ["password"],
      summary: "Sets a user's password; without --password one is generated and printed once.",
      async run({ api, args: [name], options }) {
        const chosen = passwordOf(options);
        return withPassword(chosen, await api.call("PUT", ["users", name, "password"], { password: chosen.password }), `Set the password of ${name}.`);
      },
    },
    {
      words: ["user", "remove"],
      args: ["<name>"],
      summary: "Deletes a user and their grants; what they pushed stays.",
      async run({ api, args: [name] }) {
        return { answer: await api.call("DELETE", ["users", name]), text: [`Removed user ${name} and their grants.`] };
      },
    },
    {
      words: ["user", "list"],
      args: [],
      summary: "Lists the users with their grants (the bootstrap administrator lives in the secrets, not here).",
      async run({ api }) {
        const answer = await api.call("GET", ["users"]);
        const rows = answer.users.map((user) => [user.name, user.admin ? "administrator" : formatGrants(user.grants) || "no grants"]);
        return { answer, text: rows.length === 0 ? ["No users yet."] : table(rows) };
      },
    },
  ],
};
