import { createApp } from "./app";

export { UploadSession } from "./storage/upload-session";

export default createApp();
