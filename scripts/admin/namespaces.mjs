export const namespaces = {
  title: "Namespaces: the first component of a repository's name",
  commands: [
    {
      words: ["namespace", "public"],
      args: ["<namespace>"],
      summary: "Lets anyone pull from it, without credentials.",
      async run({ api, args: [namespace] }) {
        return { answer: await api.call("PUT", ["namespaces", namespace], { public: true }), text: [`${namespace} is public: anyone may pull from it.`] };
      },
    },
    {
      words: ["namespace", "private"],
      args: ["<namespace>"],
      summary: "Makes it private again: only those granted it may pull.",
      async run({ api, args: [namespace] }) {
        return { answer: await api.call("PUT", ["namespaces", namespace], { public: false }), text: [`${namespace} is private: only those granted it may pull.`] };
      },
    },
    {
      words: ["namespace", "list"],
      args: [],
      summary: "Lists the public namespaces.",
      async run({ api }) {
        const answer = await api.call("GET", ["namespaces", "public"]);
        return { answer, text: answer.namespaces.length === 0 ? ["No namespace is public."] : answer.namespaces };
      },
    },
  ],
};
