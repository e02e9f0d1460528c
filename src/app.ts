import { Hono, type Context } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "./app-env";
import { Access, callerOf } from "./auth/access";
import { configOf } from "./config";
import { RegistryError } from "./oci/errors";
import { admin } from "./routes/admin";
import { base } from "./routes/base";
import { blobs } from "./routes/blobs";
import { bookmarkHeaders, presentedBookmark } from "./routes/bookmark";
import { catalog } from "./routes/catalog";
import { downloads } from "./routes/downloads";
import { manifests } from "./routes/manifests";
import { addResponseHeaders, authSettingsOf, originOf, type ResponseHeader } from "./routes/http";
import { referrers } from "./routes/referrers";
import { tags } from "./routes/tags";
import { token } from "./routes/token";
import { uploads } from "./routes/uploads";
import { createStorage } from "./storage";
import { Meter } from "./storage/meter";

/**
 * The registry: the OCI Distribution API under /v2/, its token service at /token, its administration
 * under /admin/, and the final hop of redirected blob GETs under /downloads/.
 */
export function createApp(): Hono<AppEnv> {
  // Not strict: /v2 and /v2/, .../uploads and .../uploads/ are the same endpoint to clients.
  const app = new Hono<AppEnv>({ strict: false });

  app.use("*", async (c, next) => {
    const meter = new Meter();
    const config = configOf(c.env);
    c.set("meter", meter);
    c.set("config", config);
    c.set(
      "storage",
      createStorage(c.env, {
        meter,
        // Administration reads what it just changed, and is rare: it begins on the primary as writes do.
        writes: !["GET", "HEAD"].includes(c.req.method) || c.req.path.startsWith("/admin/"),
        bookmark: presentedBookmark(c),
        origin: originOf(c),
        manifestCacheSeconds: config.MANIFEST_CACHE_SECONDS,
        // Deleted content's bound, and never past garbage collection's grace: the bytes must outlive the memory of them.
        blobMemorySeconds: Math.min(config.MANIFEST_CACHE_SECONDS, config.GC_GRACE_SECONDS),
        uploadExpirySeconds: config.UPLOAD_EXPIRY_SECONDS,
        waitUntil: (promise) => c.executionCtx.waitUntil(promise),
      }),
    );
    // Whatever answered, a route or onError, the response is in c.res by now.
    await next();
    addResponseHeaders(c, [...bookmarkHeaders(c), ...report(c, meter)]);
  });

  // Every API request has its caller, and what it may do, settled before its route runs.
  app.use("/v2/*", async (c, next) => {
    c.header("Docker-Distribution-API-Version", "registry/2.0");
    if (c.get("config").AUTH_MODE === "none") warnAuthOff();
    const settings = authSettingsOf(c);
    c.set("access", new Access(await callerOf(c.req.header("Authorization"), settings), settings));
    await next();
  });

  app.route("/", token);
  app.route("/", admin);
  app.route("/", downloads);
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

/** One log line per request with what it cost (REQUEST_LOG on); with COST_HEADER on, the cost's header for the response. */
function report(c: Context<AppEnv>, meter: Meter): ResponseHeader[] {
  const response = c.res;
  // Bodies the runtime measures as it sends them (JSON pages and errors) announce no length here and are not counted.
  if (response.body) meter.count("bytesOut", Number(response.headers.get("Content-Length") ?? 0));
  // The route's pattern, not the path: names and digests would make every line unique.
  if (c.get("config").REQUEST_LOG === "on") console.log({ event: "request", method: c.req.method, route: routePath(c, -1), status: response.status, cost: meter.cost });
  return c.get("config").COST_HEADER === "on" ? [["Registry-Cost", JSON.stringify(meter.cost)]] : [];
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
