// Local dev reads its secrets from .dev.vars (as `wrangler dev` does): a
// secret missing there is generated once and kept, so a fresh clone runs
// without setup and upload ids stay valid across restarts.
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readFileSync } from "node:fs";

const FILE = new URL("../.dev.vars", import.meta.url);
const GENERATED = {
  UPLOAD_SECRET: () => randomBytes(32).toString("hex"),
};

const current = existsSync(FILE) ? readFileSync(FILE, "utf8") : "";
const missing = Object.keys(GENERATED).filter((name) => !new RegExp(`^${name}=`, "m").test(current));
if (missing.length > 0) {
  const separator = current === "" || current.endsWith("\n") ? "" : "\n";
  appendFileSync(FILE, separator + missing.map((name) => `${name}=${GENERATED[name]()}\n`).join(""));
  console.log(`.dev.vars: generated ${missing.join(", ")}`);
}
