import { createApp } from "./app";
import type { Env } from "./env";
import { scheduled } from "./lifecycle/pass";

export { UploadSession } from "./storage/upload-session";

const app = createApp();

export default { fetch: app.fetch, scheduled } satisfies ExportedHandler<Env>;
