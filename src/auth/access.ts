import { RegistryError } from "../oci/errors";
import type { RepositoryName } from "../oci/names";
import type { AccessStore } from "../storage/access";
import type { CatalogView } from "../storage/repositories";
import { logIn, type BootstrapAdmin } from "./logins";
import { Memo } from "../memo";
import { principalActions, tokenActions, tokenGrantsCatalog, type Caller, type Principal } from "./policy";
import { ACTIONS, formatScope, namespaceOf, type Action } from "./scopes";
import { tokenAuthority, type Audience } from "./tokens";

/** Whether an Authorization header is Homebrew's fixed `Bearer QQ==`, which it sends with every request: no credentials at all. */
export function isAnonymousBearer(authorization: string): boolean {
  return /^Bearer\s+QQ==\s*$/i.test(authorization);
}

/** Whether a namespace is public is remembered this long per isolate; a change reaches every request within it. */
const PUBLIC_NAMESPACE_SECONDS = 30;
const publicNamespaces = new Memo<boolean>(PUBLIC_NAMESPACE_SECONDS);

/** Forgets which namespaces are public, when that changes. */
export function forgetPublicNamespaces(): void {
  publicNamespaces.clear();
}

export interface AuthSettings {
  mode: "none" | "token";
  store: AccessStore;
  /** The secret TOKEN_KEYS. */
  tokenKeys: string | undefined;
  admin: BootstrapAdmin;
  audience: Audience;
  /** Who the request comes from, for slowing down failed logins. */
  client: string;
}

/** A 401 that tells the client where to get a token, for what. */
export function challenge(audience: Audience, detail: string, scope?: string, error?: "invalid_token" | "insufficient_scope"): RegistryError {
  const parameters = [`realm="${audience.issuer}/token"`, `service="${audience.service}"`];
  if (scope) parameters.push(`scope="${scope}"`);
  if (error) parameters.push(`error="${error}"`);
  return new RegistryError("UNAUTHORIZED", detail, { headers: { "WWW-Authenticate": `Bearer ${parameters.join(",")}` } });
}

/** Decodes `Basic <base64 user:password>`; null when it is not that. */
export function basicCredentials(authorization: string): { username: string; password: string } | null {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!match) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(atob(match[1]!), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  return colon < 0 ? null : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Who a request's Authorization header says is calling: a token's bearer, a
 * user or robot with Basic credentials, or nobody in particular. Credentials
 * that are present but wrong are a 401, never a silent anonymous caller.
 */
export async function callerOf(authorization: string | undefined, settings: AuthSettings): Promise<Caller> {
  if (settings.mode === "none") return { kind: "anyone" };
  if (!authorization) return { kind: "anonymous" };
  if (isAnonymousBearer(authorization)) return { kind: "anonymous" };
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
  if (bearer) {
    const verified = await (await tokenAuthority(settings.tokenKeys)).verifyAccess(settings.audience, bearer);
    if (!verified) throw challenge(settings.audience, "the token is invalid or has expired", undefined, "invalid_token");
    return { kind: "token", ...verified };
  }
  const basic = basicCredentials(authorization);
  if (!basic) throw challenge(settings.audience, "unsupported Authorization scheme");
  const principal = await logIn(basic.username, basic.password, settings.client, settings.store, settings.admin);
  if (!principal) throw challenge(settings.audience, "wrong username or password");
  return principal;
}

/** What a request's caller may do, asked by the routes (see guard.ts) and the few that filter what they show. */
export class Access {
  constructor(
    readonly caller: Caller,
    private readonly settings: AuthSettings,
  ) {}

  async actionsOn(repository: RepositoryName): Promise<Set<Action>> {
    const { caller } = this;
    switch (caller.kind) {
      case "anyone":
        return new Set(ACTIONS);
      case "token":
        return tokenActions(caller.access, repository);
      default:
        return principalActions(caller, repository, await this.#isPublic(namespaceOf(repository)));
    }
  }

  async can(repository: RepositoryName, action: Action): Promise<boolean> {
    return (await this.actionsOn(repository)).has(action);
  }

  /**
   * Refuses a request that needs `actions` on `repository` and may not: 401
   * with a challenge naming the scope when a token could help (no credentials,
   * or a token without it), 403 DENIED for a known user or robot.
   */
  async require(repository: RepositoryName, actions: readonly Action[]): Promise<void> {
    const allowed = await this.actionsOn(repository);
    const missing = actions.filter((action) => !allowed.has(action));
    if (missing.length === 0) return;
    const detail = `${missing.join(" and ")} on ${repository} is not allowed`;
    const scope = formatScope({ type: "repository", name: repository, actions: [...actions] });
    switch (this.caller.kind) {
      case "anonymous":
        throw challenge(this.settings.audience, detail, scope);
      case "token":
        throw challenge(this.settings.audience, detail, scope, "insufficient_scope");
      default:
        throw new RegistryError("DENIED", detail);
    }
  }

  /** Whether anyone may pull `repository`, with no credentials: what a shared cache may keep and serve to all. */
  async readableByAnyone(repository: RepositoryName): Promise<boolean> {
    return this.caller.kind === "anyone" || (await this.#isPublic(namespaceOf(repository)));
  }

  /** Refuses a caller with no credentials at all (GET /v2/ asks who is there). */
  requireCredentials(): void {
    if (this.caller.kind === "anonymous") throw challenge(this.settings.audience, "authentication required");
  }

  /** Whether a mount without `from` may take a blob from whichever repository holds it: only for one who may read them all. */
  get readsEverything(): boolean {
    return this.caller.kind === "anyone" || (this.caller.kind === "user" && this.caller.admin);
  }

  /** The repositories the catalog may show this caller: all, or those of the namespaces it may pull. */
  async catalogView(): Promise<CatalogView> {
    const { caller } = this;
    if (caller.kind === "anyone") return { all: true };
    if (caller.kind === "token") {
      if (!tokenGrantsCatalog(caller.access)) return { all: false, patterns: [], publicNamespaces: true };
      return viewOf((caller.subject && (await principalNamed(caller.subject, this.settings))) || { kind: "anonymous" });
    }
    return viewOf(caller);
  }

  async #isPublic(namespace: string): Promise<boolean> {
    let isPublic = publicNamespaces.get(namespace);
    if (isPublic === undefined) {
      isPublic = await this.settings.store.isPublic(namespace);
      publicNamespaces.set(namespace, isPublic);
    }
    return isPublic;
  }
}

/** The user or robot of a login name, as they stand now: a token's subject. */
export async function principalNamed(name: string, settings: AuthSettings): Promise<Principal | null> {
  if (name === settings.admin.username) return { kind: "user", name, admin: true, grants: [] };
  const user = await settings.store.user(name);
  if (user) return { kind: "user", name: user.name, admin: user.admin, grants: user.grants };
  const robot = await settings.store.robot(name);
  return robot && { kind: "robot", name: robot.name, grants: robot.scopes };
}

function viewOf(principal: Principal): CatalogView {
  if (principal.kind === "user" && principal.admin) return { all: true };
  const patterns = principal.kind === "anonymous" ? [] : principal.grants.map((grant) => grant.pattern);
  if (principal.kind === "user") patterns.push(principal.name);
  return { all: false, patterns, publicNamespaces: true };
}
