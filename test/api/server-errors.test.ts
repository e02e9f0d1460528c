import { afterEach, describe, expect, it, vi } from "vitest";
import { fetchWithEnv, uniqueRepo } from "./client";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a failure inside the registry", () => {
  it("is 500 UNKNOWN with a generic detail; the error itself goes to the log only", async () => {
    const failure = new Error("D1_ERROR: no such table: tags_v9 (SELECT name FROM tags_v9)");
    const DB = new Proxy({} as D1Database, {
      get() {
        throw failure;
      },
    });
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await fetchWithEnv({ DB }, `/v2/${uniqueRepo()}/tags/list`);
    expect(response.status).toBe(500);
    const body = await response.text();
    expect(JSON.parse(body)).toMatchObject({ errors: [{ code: "UNKNOWN", detail: expect.any(String) }] });
    expect(body).not.toContain("tags_v9");
    expect(log).toHaveBeenCalledWith(failure);
  });
});
