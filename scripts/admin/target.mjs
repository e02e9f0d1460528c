import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { Failure, usageFailure } from "./failure.mjs";

/** Where `npm start` serves the registry: wrangler.toml's [dev] port. */
export const LOCAL_URL = "http://localhost:8787";

/** The local secrets that `npm start` keeps (scripts/dev-vars.mjs), the administrator's login among them. */
const DEV_VARS = fileURLToPath(new URL("../../.dev.vars", import.meta.url));

/**
 * The registry a command administers and the login it sends: by default the
 * local one with the administrator of .dev.vars; with --remote (or
 * REGISTRY_URL) a deployed one, with the administrator named in the
 * environment, so that the password never appears on a command line.
 */
export function targetOf(options, env) {
  if (options.url !== undefined && options.remote !== undefined) throw usageFailure("--url and --remote each name a registry: give one");
  const remote = options.url === undefined ? options.remote ?? (env.REGISTRY_URL || undefined) : undefined;
  return remote === undefined ? localTarget(originOf(options.url ?? LOCAL_URL)) : remoteTarget(originOf(remote), env);
}

function localTarget(url) {
  if (!existsSync(DEV_VARS)) throw new Failure(`${DEV_VARS} does not exist: npm start creates it, with the administrator's login, on its first run`);
  const { ADMIN_USERNAME: username, ADMIN_PASSWORD: password } = parseEnv(readFileSync(DEV_VARS, "utf8"));
  if (!username || !password) throw new Failure(`${DEV_VARS} lacks ADMIN_USERNAME or ADMIN_PASSWORD: npm start adds what is missing`);
  return {
    url,
    username,
    password,
    login: `user "${username}" from ${DEV_VARS}`,
    loginHint: "A registry started before .dev.vars last changed still has the old login: restart npm start.",
    unreachableHint: "The local registry must be running: start it with `npm start` in another terminal, or give its address with --url.",
  };
}

function remoteTarget(url, env) {
  const { ADMIN_USERNAME: username, ADMIN_PASSWORD: password } = env;
  if (!username || !password) {
    throw usageFailure("a deployed registry's administrator comes from the environment: set ADMIN_USERNAME and ADMIN_PASSWORD (never options, so the password stays out of shell history)");
  }
  // Basic credentials over plain HTTP would cross the network readable.
  if (url.protocol !== "https:" && !["localhost", "127.0.0.1", "[::1]"].includes(url.hostname)) throw usageFailure(`--remote needs https://, not ${url.origin}`);
  return {
    url,
    username,
    password,
    login: `user "${username}" from the environment (ADMIN_USERNAME, ADMIN_PASSWORD)`,
    loginHint: "They must match the Worker's secrets ADMIN_USERNAME and ADMIN_PASSWORD, or an administrator user's login.",
    unreachableHint: "Check the address, and that the Worker is deployed.",
  };
}

function originOf(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    throw usageFailure(`${text} is not a URL (e.g. ${LOCAL_URL})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw usageFailure(`${text} is not an http:// or https:// URL`);
  return new URL(url.origin);
}
