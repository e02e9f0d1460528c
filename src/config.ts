import * as z from "zod";
import type { Env } from "./env";
import { LIMIT_VARS } from "./oci/limits";
import { TAG_PATTERN } from "./oci/names";

// A retention var: a positive whole number, or the word that keeps everything.
const retention = <Word extends string>(word: Word, most: number) =>
  z.union([z.literal(word), z.string().regex(/^[1-9][0-9]{0,6}$/, `expected a positive whole number or "${word}"`).transform(Number).pipe(z.number().max(most))]).default(word);

// A quota var: a positive whole number, or "none" for no limit (the default).
const quota = () => z.union([z.literal("none"), z.string().regex(/^[1-9][0-9]{0,14}$/, 'expected a positive whole number or "none"').transform(Number)]).default("none");

// Vars are strings; these are counts, 0 included.
const wholeNumber = (fallback: number) =>
  z
    .string()
    .regex(/^(?:0|[1-9][0-9]{0,14})$/, "expected a whole number")
    .transform(Number)
    .default(fallback);

// The Worker's vars, each with its default for when it is unset.
const VARS = z.object({
  // "token": who may do what is checked (registry tokens, Basic credentials); "none": anyone may do anything, for local experiments.
  AUTH_MODE: z.enum(["token", "none"]).default("token"),
  // "accept" stores manifests whose blobs or child manifests the repository lacks (a mirror copying one platform of an index).
  SPARSE_MANIFESTS: z.enum(["reject", "accept"]).default("reject"),
  // "on": tags are immutable in namespaces where no policy (npm run admin -- policy set) says otherwise.
  IMMUTABLE_TAGS: z.enum(["off", "on"]).default("off"),
  // "on": every response carries its cost (Registry-Cost), for tests and the benchmark.
  COST_HEADER: z.enum(["on", "off"]).default("off"),
  // "on": one log line per request with its cost (Workers Logs, sampled by the deployment's head_sampling_rate); "off": none.
  REQUEST_LOG: z.enum(["on", "off"]).default("on"),
  // How long a manifest read by digest stays in a location's cache, and a blob found in a repository in an isolate's memory: the longest deleted content may be served elsewhere. 0: neither.
  MANIFEST_CACHE_SECONDS: z.string().regex(/^[0-9]{1,9}$/, "expected a whole number of seconds").transform(Number).default(60),
  // Retention where no policy sets it: untagged manifests older than this many days are deleted ("never": kept)...
  RETENTION_UNTAGGED_DAYS: retention("never", 36_500),
  // ...and of the tags matching RETENTION_KEEP_TAGS_MATCHING (a GLOB), the newest this many are kept ("all": every one).
  RETENTION_KEEP_TAGS: retention("all", 1_000_000),
  RETENTION_KEEP_TAGS_MATCHING: z.string().regex(TAG_PATTERN, "expected a GLOB over tag names").default("*"),
  // How long garbage collection leaves a blob unreferenced before deleting it, from when it first found it so.
  GC_GRACE_SECONDS: wholeNumber(3600),
  ...LIMIT_VARS,
  // How long an upload lives after its POST: then its id is refused and its session's alarm removes what it wrote.
  UPLOAD_EXPIRY_SECONDS: z.string().regex(/^[1-9][0-9]{0,8}$/, "expected a positive whole number of seconds").transform(Number).default(24 * 60 * 60),
  // Quotas where no policy sets them: the largest blob (bytes), the most bytes a namespace holds, the most repositories it has.
  MAX_BLOB_BYTES: quota(),
  QUOTA_MAX_STORAGE_BYTES: quota(),
  QUOTA_MAX_REPOSITORIES: quota(),
  // How a blob GET is answered: "signed" redirects to the Worker's own download route, "presigned" to R2, "none" streams.
  BLOB_REDIRECT: z.enum(["presigned", "signed", "none"]).default("signed"),
  // Blobs smaller than this are answered directly: a redirect costs the client a round trip.
  REDIRECT_MIN_BYTES: wholeNumber(1024 * 1024),
  // How long a redirect's URL works; R2 takes 1 second to 7 days.
  REDIRECT_TTL_SECONDS: wholeNumber(300).pipe(z.number().min(1).max(7 * 24 * 60 * 60)),
});

/** The registry's settings: its vars, parsed. */
export type Config = z.infer<typeof VARS>;

const parsed = new WeakMap<Env, Config>();

/** The settings a set of bindings carries, parsed on first use. An invalid var throws, naming it. */
export function configOf(env: Env): Config {
  let config = parsed.get(env);
  if (!config) {
    const result = VARS.safeParse(env);
    if (!result.success) throw new Error(`invalid configuration: ${z.prettifyError(result.error)}`);
    config = result.data;
    parsed.set(env, config);
  }
  return config;
}
