/** Tag lists and referrers: a first page, a deep page, and whole walks following Link headers. */
import { check, MEDIA } from "../client.mjs";
import { REPOS } from "../fixtures.mjs";
import { runPool } from "../pool.mjs";
import { LATENCY, latencyOutcome, P50, P99, poolOutcome, rate } from "./outcomes.mjs";

const PAGE = 100;

function checkSameList(server, what, actual, expected) {
  const same = actual.length === expected.length && actual.every((item, i) => item === expected[i]);
  check(same, `${server}: ${what} has ${actual.length} entries [${actual[0]} … ${actual.at(-1)}], expected ${expected.length} [${expected[0]} … ${expected.at(-1)}]`);
}

function isSorted(keys) {
  return keys.every((key, i) => i === 0 || keys[i - 1] < key);
}

/**
 * Follows Link headers from `start` to the end. Each page must be sorted and
 * start after the previous one ended (so no overlap and no gap can hide), and
 * together they must be exactly `expected`. A server that does not paginate
 * answers everything at once: then only the set is checked, since order is
 * what pagination needs and a single page has no pagination.
 */
async function walkPages(client, fetchPage, start, keyOf, expected, paginates) {
  const keys = [];
  let target = start;
  let pages = 0;
  while (target) {
    const page = await fetchPage(target);
    pages++;
    check(pages <= expected.length + 1, `${client.name}: more pages than entries; Link loop?`);
    const pageKeys = page.items.map(keyOf);
    if (paginates) {
      check(isSorted(pageKeys), `${client.name}: page ${pages} is not sorted`);
      check(keys.length === 0 || pageKeys.length === 0 || pageKeys[0] > keys.at(-1), `${client.name}: page ${pages} overlaps the previous one`);
    }
    keys.push(...pageKeys);
    target = page.next;
  }
  checkSameList(client.name, "the walk", paginates ? keys : [...keys].sort(), expected);
  return { pages, sorted: isSorted(keys) };
}

/** One page, `pageRequests` times at concurrency 8: a request-bound workload with a floor twin. */
function pageOf({ id, title, unsupported, target, fetchAndCheck }) {
  return {
    id,
    title: `${title}, c=8`,
    figures: [rate("req/s"), P50, P99],
    unsupported,
    floorTarget: true,
    floor: (context) => [{ method: "GET", target: target(context) }],
    async run(context, { client }) {
      return poolOutcome(await runPool({ count: context.config.pageRequests, concurrency: 8, task: () => fetchAndCheck(client, target(context), context) }));
    },
  };
}

/**
 * A walk of every page, `walks` times in a row (`pageWalks` without n: one
 * request each, 10 of them were 50 ms of timing a round); the figure is the
 * median walk.
 */
function walkOf({ id, title, unsupported, start, walk, paged }) {
  return {
    id,
    title,
    figures: [LATENCY],
    unsupported,
    floorTarget: true,
    floor: (context) => [{ method: "GET", target: start(context), walk: true }],
    async run(context, server) {
      let shape = "";
      const outcome = await latencyOutcome(paged ? context.config.walks : context.config.pageWalks, async () => {
        shape = await walk(context, server);
      });
      return { ...outcome, notes: shape ? [shape] : [] };
    },
  };
}

// ---------------------------------------------------------------- tags

const NO_TAG_PAGINATION = "unsupported by peer: ignores n and last and returns every tag, unsorted (its one full answer is timed under tags-all)";
const tagPagination = (state) => (state.paginatesTags ? null : NO_TAG_PAGINATION);

const tagsFirst = pageOf({
  id: "tags-first",
  title: "tag list, first page (n=100)",
  unsupported: tagPagination,
  target: () => `/v2/${REPOS.tags}/tags/list?n=${PAGE}`,
  async fetchAndCheck(client, target, { data }) {
    const page = await client.tagsPage(target);
    checkSameList(client.name, "the first tag page", page.items, data.tags.slice(0, PAGE));
    check(page.next !== null, `${client.name}: the first tag page has no Link to the next`);
  },
});

const tagsDeep = pageOf({
  id: "tags-deep",
  title: "tag list, deep page (last=<near the end>, n=100)",
  unsupported: tagPagination,
  target: ({ data }) => `/v2/${REPOS.tags}/tags/list?n=${PAGE}&last=${data.tags[data.tags.length - PAGE - 1]}`,
  async fetchAndCheck(client, target, { data }) {
    const page = await client.tagsPage(target);
    checkSameList(client.name, "the deep tag page", page.items, data.tags.slice(-PAGE));
  },
});

/**
 * The whole tag list by following Link headers: with n=100 (100 pages of
 * 10,000 tags) and without n (the server's own page size, what `crane ls` or
 * skopeo do).
 */
function tagsWalk(id, pageSize) {
  const query = pageSize ? `?n=${pageSize}` : "";
  return walkOf({
    id,
    title: `tag list, all pages following Link (${pageSize ? `n=${pageSize}` : "no n: server's page size"})`,
    paged: pageSize !== null,
    start: () => `/v2/${REPOS.tags}/tags/list${query}`,
    async walk({ data }, { client, state }) {
      const walk = await walkPages(client, (t) => client.tagsPage(t), `/v2/${REPOS.tags}/tags/list${query}`, (tag) => tag, data.tags, state.paginatesTags);
      return `${walk.pages} page(s)${walk.sorted ? "" : ", unsorted"}`;
    },
  });
}

// ---------------------------------------------------------------- referrers

const NO_REFERRERS = "unsupported by peer: no referrers API (404)";
const referrersApi = (state) => (state.referrersSupported ? null : NO_REFERRERS);

/** A referrers page: entries in digest order, each describing the artifact pushed. */
function checkReferrers(client, items, expected) {
  checkSameList(
    client.name,
    "the referrers page",
    items.map((d) => d.digest),
    expected.map((m) => m.digest),
  );
  for (const [i, d] of items.entries()) {
    check(
      d.mediaType === MEDIA.ociManifest && d.size === expected[i].size && d.artifactType === "application/vnd.example.bench.signature",
      `${client.name}: referrer descriptor ${d.digest} is wrong: ${JSON.stringify(d)}`,
    );
  }
}

const referrersFirst = pageOf({
  id: "referrers-first",
  title: "referrers, first page (n=100)",
  unsupported: referrersApi,
  target: ({ data }) => `/v2/${REPOS.referrers}/referrers/${data.image.digest}?n=${PAGE}`,
  async fetchAndCheck(client, target, { data }) {
    const page = await client.referrersPage(target);
    checkReferrers(client, page.items, data.referrers.slice(0, PAGE));
    check(page.next !== null, `${client.name}: the first referrers page has no Link to the next`);
  },
});

const referrersDeep = pageOf({
  id: "referrers-deep",
  title: "referrers, deep page (last=<near the end>, n=100)",
  unsupported: referrersApi,
  target: ({ data }) => `/v2/${REPOS.referrers}/referrers/${data.image.digest}?n=${PAGE}&last=${data.referrers[data.referrers.length - PAGE - 1].digest}`,
  async fetchAndCheck(client, target, { data }) {
    const page = await client.referrersPage(target);
    checkReferrers(client, page.items, data.referrers.slice(-PAGE));
  },
});

function referrersWalk(id, pageSize) {
  const query = pageSize ? `?n=${pageSize}` : "";
  const start = ({ data }) => `/v2/${REPOS.referrers}/referrers/${data.image.digest}${query}`;
  return walkOf({
    id,
    title: `referrers, all pages following Link (${pageSize ? `n=${pageSize}` : "no n: server's page size"})`,
    paged: pageSize !== null,
    unsupported: referrersApi,
    start,
    async walk(context, { client }) {
      const expected = context.data.referrers.map((m) => m.digest);
      const walk = await walkPages(client, (t) => client.referrersPage(t), start(context), (d) => d.digest, expected, true);
      return `${walk.pages} page(s)`;
    },
  });
}

export const LISTING_WORKLOADS = [
  tagsFirst,
  tagsDeep,
  tagsWalk("tags-all", PAGE),
  tagsWalk("tags-all-default", null),
  referrersFirst,
  referrersDeep,
  referrersWalk("referrers-all", PAGE),
  referrersWalk("referrers-all-default", null),
];
