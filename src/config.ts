import * as z from "zod";
import type { Env } from "./env";
import { LIMIT_VARS } from "./oci/limits";

// The Worker's vars, each with its default for when it is unset.
const VARS = z.object({
  // "token": who may do what is checked (registry tokens, Basic credentials); "none": anyone may do anything, for local experiments.
  AUTH_MODE: z.enum(["token", "none"]).default("token"),
  // "accept" stores manifests whose blobs or child manifests the repository lacks (a mirror copying one platform of an index).
  SPARSE_MANIFESTS: z.enum(["reject", "accept"]).default("reject"),
  // How long a manifest read by digest stays in a location's cache: the longest a deleted one may be served elsewhere. 0: not cached.
  MANIFEST_CACHE_SECONDS: z.string().regex(/^[0-9]{1,9}$/, "expected a whole number of seconds").transform(Number).default(60),
  ...LIMIT_VARS,
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
