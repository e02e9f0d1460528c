import { describe, expect, it } from "vitest";
import { VersionedPages, type VersionedStatements } from "../../src/storage/versioned-pages";

/** A list as D1 would answer for it (its version, its page's row: here, a text), counting the statements asked of it. */
function listOf(text: string, version: number | null = 1) {
  const list = { version, text, asked: [] as string[] };
  const statement = (name: string, row: () => Record<string, unknown>) =>
    ({
      first: async (column?: string) => {
        list.asked.push(name);
        return column === undefined ? row() : row()[column];
      },
    }) as unknown as D1PreparedStatement;
  const statements: VersionedStatements = {
    version: () => statement("version", () => ({ version: list.version })),
    page: () => statement("page", () => ({ version: list.version, page: list.text })),
  };
  return { list, statements };
}

/** The page a row holds: here, a text. */
const textOf = (row: { page: string }) => row.page;

/** Pages that are texts; the budget counts characters. */
const pagesOf = (budget: number) => new VersionedPages<string>(budget, (page) => page.length);

/** Whether `key`'s page at version 1 is answered from memory (asking D1 only for the version). */
async function remembered(pages: VersionedPages<string>, key: string): Promise<boolean> {
  const { list, statements } = listOf("listed again");
  await pages.page(key, statements, textOf);
  return list.asked.join() === "version";
}

describe("VersionedPages, the isolate's memory of tags and referrers pages", () => {
  it("lists a page nobody remembers in one statement; asked again, asks D1 only for the version; listed again once the version changed", async () => {
    const pages = pagesOf(100);
    const { list, statements } = listOf("first");
    expect(await pages.page("a", statements, textOf)).toBe("first");
    expect(list.asked).toEqual(["page"]);
    expect(await pages.page("a", statements, () => "never")).toBe("first");
    expect(list.asked).toEqual(["page", "version"]);
    Object.assign(list, { version: 2, text: "second" });
    expect(await pages.page("a", statements, textOf)).toBe("second");
    expect(list.asked).toEqual(["page", "version", "version", "page"]);
  });

  it("remembers nothing of a list that has no version (nothing was ever written to it)", async () => {
    const pages = pagesOf(100);
    const { list, statements } = listOf("[]0", null);
    for (let i = 0; i < 2; i++) expect(await pages.page("a", statements, textOf)).toBe("[]0");
    expect(list.asked).toEqual(["page", "page"]);
  });

  it("holds no more than its budget: the oldest pages go first, and a page over a quarter of it is not kept", async () => {
    const pages = pagesOf(100);
    const list = (key: string, text: string, version = 1) => pages.page(key, listOf(text, version).statements, textOf);
    for (const key of ["a", "b", "c", "d"]) await list(key, key.repeat(25));
    await list("e", "e".repeat(20));
    // Listed again at a new version, a page is the newest: "b" goes before it.
    await list("c", "c".repeat(25), 2);
    await list("f", "f".repeat(25));
    await list("big", "x".repeat(26));
    // Remembered ones first: asking for a forgotten one lists it, and remembers it.
    const kept = [];
    for (const key of ["d", "e", "f"]) kept.push(await remembered(pages, key));
    expect(kept).toEqual([true, true, true]);
    expect(await remembered(pages, "big")).toBe(false);
    expect(await remembered(pages, "b")).toBe(false);
    expect(await remembered(pages, "a")).toBe(false);
  });
});
