import * as z from "zod";
import type { Env } from "./env";
import { LIMIT_VARS } from "./oci/limits";

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
