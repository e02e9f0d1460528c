import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

describe("end-1 GET /v2/", () => {
  it("answers 200 with the API version header", async () => {
    const response = await SELF.fetch("http://registry.test/v2/");
    expect(response.status).toBe(200);
    expect(response.headers.get("Docker-Distribution-API-Version")).toBe("registry/2.0");
    expect(await response.json()).toEqual({});
  });

  it("answers unknown endpoints with a JSON error", async () => {
    const response = await SELF.fetch("http://registry.test/v2/x/nothing-here");
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ errors: [{ code: "UNSUPPORTED" }] });
  });
});
