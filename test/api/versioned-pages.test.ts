import { describe, expect, it } from "vitest";
import { VersionedPages } from "../../src/storage/versioned-pages";

/** Pages that are their own text; the budget counts characters. */
const pagesOf = (budget: number) => new VersionedPages<string>(budget, (page) => page.length);

/** Lists `text` at `version` under `key`, as a query that found the version changed would. */
const list = (pages: VersionedPages<string>, key: string, text: string, version = 1) => pages.answer(key, pages.recall(key), { version, page: text }, (t) => t);

describe("VersionedPages, the isolate's memory of tags and referrers pages", () => {
  it("answers a row without a page with the page remembered at its version, and a row with one with that page", async () => {
    const pages = pagesOf(100);
    await list(pages, "a", "first", 1);
    const recalled = pages.recall("a");
    expect(recalled).toMatchObject({ version: 1, page: "first" });
    expect(await pages.answer("a", recalled, { version: 1, page: null }, () => "never")).toBe("first");
    expect(await pages.answer("a", recalled, { version: 2, page: "second" }, (t) => t)).toBe("second");
    expect(pages.recall("a")).toMatchObject({ version: 2, page: "second" });
  });

  it("remembers nothing of a list that has no version (nothing was ever written to it)", async () => {
    const pages = pagesOf(100);
    expect(await pages.answer("a", undefined, { version: null, page: "[]0" }, (t) => t)).toBe("[]0");
    expect(pages.recall("a")).toBeUndefined();
  });

  it("holds no more than its budget: the oldest pages go first, and a page over a quarter of it is not kept", async () => {
    const pages = pagesOf(100);
    for (const key of ["a", "b", "c", "d"]) await list(pages, key, key.repeat(25));
    await list(pages, "e", "e".repeat(20));
    expect(["a", "b", "c", "d", "e"].map((key) => pages.recall(key) !== undefined)).toEqual([false, true, true, true, true]);
    // Listed again, a page is the newest: "b" goes before it.
    await list(pages, "c", "c".repeat(25), 2);
    await list(pages, "f", "f".repeat(25));
    expect(["b", "c", "d", "e", "f"].map((key) => pages.recall(key) !== undefined)).toEqual([false, true, true, true, true]);
    await list(pages, "big", "x".repeat(26));
    expect(pages.recall("big")).toBeUndefined();
    expect(pages.recall("f")).toBeDefined();
  });
});
