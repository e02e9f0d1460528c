import { Failure } from "./failure.mjs";

/** The administration API answers at once; a registry silent this long is not going to. */
const TIMEOUT_MS = 30_000;

/** The administration API (/admin/) of one registry, called as its administrator with Basic credentials. */
export class AdminApi {
  #target;

  constructor(target) {
    this.#target = target;
  }

  /** host[:port], as docker login and image references name the registry. */
  get host() {
    return this.#target.url.host;
  }

  /**
   * Sends a request to /admin/<segments, each encoded>, with `body` as JSON;
   * returns the API's JSON answer ({} for one with no body). Anything else is
   * a Failure that says what went wrong in words.
   */
  async call(method, segments, body) {
    const { url, username, password } = this.#target;
    const path = `/admin/${segments.map(encodeURIComponent).join("/")}`;
    const headers = { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(new URL(path, url), { method, headers, body: body && JSON.stringify(body), signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (error) {
      throw new Failure(`Nothing answers at ${url.origin} (${reasonOf(error)}).\n${this.#target.unreachableHint}`);
    }
    const text = await response.text();
    if (!response.ok) throw new Failure(this.#describe(response.status, text));
    if (text === "") return {};
    try {
      return JSON.parse(text);
    } catch {
      throw new Failure(`${method} ${path} answered ${response.status} with no JSON: is ${url.origin} this registry?`);
    }
  }

  /** An error answer in words: the OCI error's code and detail, the issues of a refused request, and for a refused login which one was sent. */
  #describe(status, text) {
    const error = firstError(text);
    const lines = [error ? `${status} ${error.code}: ${typeof error.detail === "string" ? error.detail : error.message}` : `${status}: ${text.slice(0, 200) || "no body"}`];
    for (const issue of error?.detail?.issues ?? []) lines.push(`  ${issue.path ? `${issue.path}: ` : ""}${issue.message}`);
    if (status === 401 || status === 403) lines.push(`The login sent: ${this.#target.login}.`);
    if (status === 401) lines.push(this.#target.loginHint);
    return lines.join("\n");
  }
}

/** The first error of the spec's body, `{"errors":[{"code","message","detail"}]}`; null when the body is not that. */
function firstError(text) {
  try {
    const error = JSON.parse(text).errors?.[0];
    return typeof error?.code === "string" ? error : null;
  } catch {
    return null;
  }
}

function reasonOf(error) {
  if (error.name === "TimeoutError") return `no answer within ${TIMEOUT_MS / 1000} s`;
  return error.cause?.code ?? error.cause?.message ?? error.message;
}
