import { describe, expect, it } from "vitest";
import { errorCode, fetchRegistry, pushBlob, randomBytes } from "./client";

describe("GET /v2/_catalog", () => {
  it("lists repositories in lexical order, paged by n and last with a Link", async () => {
    const prefix = `catalog${Date.now().toString(36)}`;
    const names = [`${prefix}/c`, `${prefix}/a`, `${prefix}/b/nested`];
    for (const name of names) await pushBlob(name, randomBytes(3));
    const all: string[] = [];
    let next: string | null = `/v2/_catalog?n=2`;
    while (next) {
      const response = await fetchRegistry(next);
      expect(response.status).toBe(200);
      all.push(...((await response.json()) as { repositories: string[] }).repositories);
      next = response.headers.get("Link")?.match(/^<([^>]+)>; rel="next"$/)?.[1] ?? null;
    }
    expect(all).toEqual([...all].sort());
    expect(all.filter((n) => n.startsWith(prefix))).toEqual([`${prefix}/a`, `${prefix}/b/nested`, `${prefix}/c`]);
  });

  it("starts after `last`", async () => {
    const prefix = `catalogl${Date.now().toString(36)}`;
    for (const name of [`${prefix}/x`, `${prefix}/y`]) await pushBlob(name, randomBytes(3));
    const response = await fetchRegistry(`/v2/_catalog?last=${prefix}/x&n=1`);
    expect(response.headers.get("Content-Type")).toBe("application/json");
    // Byte for byte what JSON.stringify writes.
    expect(await response.text()).toBe(JSON.stringify({ repositories: [`${prefix}/y`] }));
  });

  it("refuses a negative n", async () => {
    const response = await fetchRegistry("/v2/_catalog?n=-1");
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("PAGINATION_NUMBER_INVALID");
  });
});
