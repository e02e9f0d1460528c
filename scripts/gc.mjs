// `npm run gc [-- <url>]`: runs one lifecycle pass (retention, then garbage
// collection) on the local registry that `npm start` serves, through the route
// wrangler dev serves beside every Worker to fire its scheduled handler. The
// pass writes what it did to npm start's log: { event: "lifecycle", ... }.
import process from "node:process";
import { LOCAL_URL } from "./admin/target.mjs";

const base = process.argv[2] ?? LOCAL_URL;
const url = new URL(`/cdn-cgi/local/scheduled?cron=${encodeURIComponent("*/15 * * * *")}`, base);
let response;
try {
  response = await fetch(url);
} catch (error) {
  console.error(`npm run gc: no registry at ${base} (is npm start running?): ${error.cause?.message ?? error.message}`);
  process.exit(1);
}
if (!response.ok) {
  console.error(`npm run gc: ${url} answered ${response.status}: ${await response.text()}`);
  process.exit(1);
}
console.log(`npm run gc: a lifecycle pass ran on ${base}; npm start's log has its summary`);
