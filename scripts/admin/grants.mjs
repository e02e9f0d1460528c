export const grants = {
  title:
    "Grants: a user's role on the namespaces a pattern matches (* stands for any run of name characters).\n" +
    "Roles: pull; push (and pull); delete (and push); admin (all three)",
  commands: [
    {
      words: ["grant"],
      args: ["<user>", "<pattern>", "<pull|push|delete|admin>"],
      summary: "Gives a user a role on a pattern, replacing the role they had there.",
      async run({ api, args: [user, pattern, role] }) {
        return { answer: await api.call("PUT", ["users", user, "grants", pattern], { role }), text: [`${user} now has ${role} on ${pattern}.`] };
      },
    },
    {
      words: ["revoke"],
      args: ["<user>", "<pattern>"],
      summary: "Takes a user's grant on a pattern away.",
      async run({ api, args: [user, pattern] }) {
        return { answer: await api.call("DELETE", ["users", user, "grants", pattern]), text: [`Revoked ${user}'s grant on ${pattern}.`] };
      },
    },
  ],
};
