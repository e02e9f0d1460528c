import { Hono } from "hono";
import type { AppEnv } from "./app-env";
import { Access, callerOf } from "./auth/access";
import { configOf } from "./config";
import { RegistryError } from "./oci/errors";
import { admin } from "./routes/admin";
import { base } from "./routes/base";
import { blobs } from "./routes/blobs";
import { carryBookmark, presentedBookmark } from "./routes/bookmark";
import { catalog } from "./routes/catalog";
import { manifests } from "./routes/manifests";
import { authSettingsOf } from "./routes/http";
import { referrers } from "./routes/referrers";
import { tags } from "./routes/tags";
import { token } from "./routes/token";
import { uploads } from "./routes/uploads";
import { createStorage } from "./storage";

/** The registry: the OCI Distribution API under /v2/, its token service at /token, and its administration under /admin/. */
export function createApp(): Hono<AppEnv> {
  // Not strict: /v2 and /v2/, .../uploads and .../uploads/ are the same endpoint to clients.
  const app = new Hono<AppEnv>({ strict: false });

  app.use("*", async (c, next) => {
    const config = configOf(c.env);
    c.set("config", config);
    c.set(
      "storage",
      createStorage(c.env, {
        // Administration reads what it just changed, and is rare: it begins on the primary as writes do.
        writes: !["GET", "HEAD"].includes(c.req.method) || c.req.path.startsWith("/admin/"),
        bookmark: presentedBookmark(c),
        origin: new URL(c.req.url).origin,
        manifestCacheSeconds: config.MANIFEST_CACHE_SECONDS,
        waitUntil: (promise) => c.executionCtx.waitUntil(promise),
      }),
    );
    await next();
    carryBookmark(c);
  });

  // Every API request has its caller, and what it may do, settled before its route runs.
  app.use("/v2/*", async (c, next) => {
    c.header("Docker-Distribution-API-Version", "registry/2.0");
    if (c.var.config.AUTH_MODE === "none") warnAuthOff();
    const settings = authSettingsOf(c);
    c.set("access", new Access(await callerOf(c.req.header("Authorization"), settings), settings));
    await next();
  });

  app.route("/", token);
  app.route("/", admin);
  app.route("/v2", base);
  app.route("/v2", catalog);
  app.route("/v2", uploads);
  app.route("/v2", blobs);
  app.route("/v2", manifests);
  app.route("/v2", tags);
  app.route("/v2", referrers);

  app.notFound(() => errorResponse(new RegistryError("UNSUPPORTED", "no such endpoint", { status: 404 })));
  app.onError((error) => {
    if (error instanceof RegistryError) return errorResponse(error);
    // Its message may name internals (SQL, keys, bindings): the log gets it, the client does not.
    console.error(error);
    return errorResponse(new RegistryError("UNKNOWN", "internal error; the registry's log has the details"));
  });
  return app;
}

let warned = false;

/** Said once per isolate, loudly: with auth off, anyone who reaches the registry may push and delete. */
function warnAuthOff(): void {
  if (warned) return;
  warned = true;
  console.warn("AUTH_MODE=none: no credentials are checked; anyone who can reach this registry may pull, push and delete. For local experiments only.");
}

/** The one place a RegistryError becomes a response. */
function errorResponse(error: RegistryError): Response {
  return new Response(JSON.stringify(error.toJSON()), {
    status: error.status,
    headers: { "Content-Type": "application/json", "Docker-Distribution-API-Version": "registry/2.0", ...error.headers },
  });
}
