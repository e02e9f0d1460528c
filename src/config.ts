import * as z from "zod";
import type { Env } from "./env";
import { LIMIT_VARS } from "./oci/limits";
import { TAG_PATTERN } from "./oci/names";

// A retention var: a positive whole number, or the word that keeps everything.
const retention = <Word extends string>(word: Word, most: number) =>
  z.union([z.literal(word), z.string().regex(/^[1-9][0-9]{0,6}$/, `expected a positive whole number or "${word}"`).transform(Number).pipe(z.number().max(most))]).default(word);

// The Worker's vars, each with its default for when it is unset.
const VARS = z.object({
  // "token": who may do what is checked (registry tokens, Basic credentials); "none": anyone may do anything, for local experiments.
  AUTH_MODE: z.enum(["token", "none"]).default("token"),
  // "accept" stores manifests whose blobs or child manifests the repository lacks (a mirror copying one platform of an index).
  SPARSE_MANIFESTS: z.enum(["reject", "accept"]).default("reject"),
  // "on": tags are immutable in namespaces where no policy (npm run admin -- policy set) says otherwise.
  IMMUTABLE_TAGS: z.enum(["off", "on"]).default("off"),
  // Retention where no policy sets it: untagged manifests older than this many days are deleted ("never": kept)...
  RETENTION_UNTAGGED_DAYS: retention("never", 36_500),
  // ...and of the tags matching RETENTION_KEEP_TAGS_MATCHING (a GLOB), the newest this many are kept ("all": every one).
  RETENTION_KEEP_TAGS: retention("all", 1_000_000),
  RETENTION_KEEP_TAGS_MATCHING: z.string().regex(TAG_PATTERN, "expected a GLOB over tag names").default("*"),
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
