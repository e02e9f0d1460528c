// Local dev reads its secrets from .dev.vars (as `wrangler dev` does): a
// secret missing there is generated once and kept, so a fresh clone runs
// without setup, and upload ids and tokens stay valid across restarts.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readFileSync } from "node:fs";

const FILE = new URL("../.dev.vars", import.meta.url);
const GENERATED = {
  UPLOAD_SECRET: () => randomBytes(32).toString("hex"),
  DOWNLOAD_SECRET: () => randomBytes(32).toString("hex"),
  TOKEN_KEYS: () => `'${JSON.stringify([generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" })])}'`,
  ADMIN_USERNAME: () => "admin",
  ADMIN_PASSWORD: () => randomBytes(18).toString("base64url"),
};

const current = existsSync(FILE) ? readFileSync(FILE, "utf8") : "";
const missing = Object.keys(GENERATED).filter((name) => !new RegExp(`^${name}=`, "m").test(current));
if (missing.length > 0) {
  const separator = current === "" || current.endsWith("\n") ? "" : "\n";
  appendFileSync(FILE, separator + missing.map((name) => `${name}=${GENERATED[name]()}\n`).join(""));
  console.log(`.dev.vars: generated ${missing.join(", ")} (the administrator's login is there)`);
}

if ((process.env.AUTH_MODE ?? "none") === "none") {
  console.warn(
    [
      "",
      "  ************************************************************************",
      "  *  AUTH_MODE=none: no credentials are checked. Anyone who can reach  *",
      "  *  this registry may pull, push and delete. For local experiments.   *",
      "  *  AUTH_MODE=token npm start checks them (login: see .dev.vars).      *",
      "  ************************************************************************",
      "",
    ].join("\n"),
  );
}
