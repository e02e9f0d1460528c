import { randomBytes } from "node:crypto";

/** A user's or robot's login. */
export interface Login {
  username: string;
  password: string;
}

export type Role = "pull" | "push" | "delete" | "admin";

/**
 * The registry's administration API (/admin/), called over HTTP with the bootstrap
 * administrator's login: the tests set up their users, grants, robots and public namespaces
 * with it. Any answer but the expected one throws with the registry's body.
 */
export class AdminApi {
  constructor(
    /** host:port of the registry. */
    private readonly registry: string,
    private readonly admin: Login,
  ) {}

  /** A user with a fresh password; they own the namespace of their name. */
  async createUser(label: string): Promise<Login> {
    const login = { username: uniqueLogin(label), password: newPassword() };
    await this.call("POST", "users", 201, { name: login.username, password: login.password });
    return login;
  }

  async grant(username: string, pattern: string, role: Role): Promise<void> {
    await this.call("PUT", `users/${username}/grants/${pattern}`, 204, { role });
  }

  /** A robot with these scopes; its login is its name and the token, shown this once. */
  async createRobot(label: string, scopes: { pattern: string; role: Role }[]): Promise<Login> {
    const name = uniqueLogin(label);
    const { token } = (await (await this.call("POST", "robots", 201, { name, scopes })).json()) as { token: string };
    return { username: name, password: token };
  }

  async revokeRobot(name: string): Promise<void> {
    await this.call("DELETE", `robots/${name}`, 204);
  }

  async setPublic(namespace: string, isPublic: boolean): Promise<void> {
    await this.call("PUT", `namespaces/${namespace}`, 204, { public: isPublic });
  }

  private async call(method: string, path: string, expected: number, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { Authorization: basicAuthorization(this.admin) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`http://${this.registry}/admin/${path}`, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
    if (response.status !== expected) throw new Error(`${method} /admin/${path}: ${response.status} instead of ${expected}: ${await response.text()}`);
    return response;
  }
}

export function basicAuthorization(login: Login): string {
  return `Basic ${Buffer.from(`${login.username}:${login.password}`).toString("base64")}`;
}

let counter = 0;
/** A login name (and so a namespace) no other test or run uses: lowercase letters, digits and dashes. */
export function uniqueLogin(label: string): string {
  return `${label}-${Date.now().toString(36)}${(counter++).toString(36)}${randomBytes(2).toString("hex")}`;
}

/** A password the administration API accepts, with no colon (clients split `user:password` at the first). */
function newPassword(): string {
  return randomBytes(18).toString("base64url");
}

/** The administrator's secrets, named, to start the list of secrets no response may carry. */
export function adminSecrets(login: Login): Map<string, string> {
  return new Map([
    ["the administrator's password", login.password],
    ["the administrator's Basic credentials", `${login.username}:${login.password}`],
  ]);
}
