import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { Access, basicCredentials, isAnonymousBearer, principalNamed, type AuthSettings } from "../auth/access";
import { logIn, loginFingerprint } from "../auth/logins";
import type { Caller } from "../auth/policy";
import { parseScopes, type Scope } from "../auth/scopes";
import { tokenAuthority, type AccessClaim } from "../auth/tokens";
import { RegistryError } from "../oci/errors";
import { authSettingsOf } from "./http";

/**
 * The token service (distribution's token spec): GET /token with Basic
 * credentials or none, and the OAuth2 form POST /token that containerd tries
 * first (grant_type=password or refresh_token). A token grants what was asked,
 * as far as the caller is allowed it; a refresh token is given on request
 * (`offline_token=true`, `access_type=offline`) for a login with a password.
 */
export const token = new Hono<AppEnv>();

token.get("/token", async (c) => {
  const settings = settingsFor(c, c.req.query("service"));
  const authorization = c.req.header("Authorization");
  const caller = authorization && !isAnonymousBearer(authorization) ? await logInWith(basicCredentials(authorization), settings) : anonymousOr(settings);
  return c.json(await issue(c, settings, caller, parseScopes(c.req.queries("scope") ?? []), c.req.query("offline_token") === "true"));
});

token.post("/token", async (c) => {
  const form = await c.req.parseBody();
  const field = (name: string) => (typeof form[name] === "string" ? form[name] : undefined);
  const settings = settingsFor(c, field("service"));
  const scopes = parseScopes([field("scope") ?? ""]);
  switch (field("grant_type")) {
    case "password": {
      const username = field("username");
      const password = field("password");
      const caller = await logInWith(username === undefined || password === undefined ? null : { username, password }, settings);
      return c.json(await issue(c, settings, caller, scopes, field("access_type") === "offline"));
    }
    case "refresh_token": {
      const refresh = await (await tokenAuthority(settings.tokenKeys)).verifyRefresh(settings.audience, field("refresh_token") ?? "");
      // Refresh tokens stand for users' logins; a robot logs in with its token each time.
      const caller = refresh && (await principalNamed(refresh.subject, settings));
      const current = caller?.kind === "user" ? await loginFingerprint(caller.name, settings.store, settings.admin) : null;
      if (!caller || current === null || current !== refresh?.fingerprint) {
        throw refusedLogin("the refresh token is invalid, has expired, or its user is gone or has a new password");
      }
      return c.json(await issue(c, settings, caller, scopes, false));
    }
    default:
      throw new RegistryError("UNSUPPORTED", "grant_type must be password or refresh_token");
  }
});

function settingsFor(c: Context<AppEnv>, service: string | undefined): AuthSettings {
  const settings = authSettingsOf(c);
  if (service !== undefined && service !== settings.audience.service) {
    throw new RegistryError("UNSUPPORTED", `this token service issues tokens for ${settings.audience.service}, not ${service.slice(0, 200)}`);
  }
  return settings;
}

function anonymousOr(settings: AuthSettings): Caller {
  return settings.mode === "none" ? { kind: "anyone" } : { kind: "anonymous" };
}

async function logInWith(credentials: { username: string; password: string } | null, settings: AuthSettings): Promise<Caller> {
  if (settings.mode === "none") return { kind: "anyone" };
  const principal = credentials && (await logIn(credentials.username, credentials.password, settings.client, settings.store, settings.admin));
  if (!principal) throw refusedLogin("wrong username or password");
  return principal;
}

function refusedLogin(detail: string): RegistryError {
  return new RegistryError("UNAUTHORIZED", detail, { headers: { "WWW-Authenticate": 'Basic realm="registry"' } });
}

/** The token response: an access token for what the caller may have of `scopes`, and a refresh token when asked for one. */
async function issue(c: Context<AppEnv>, settings: AuthSettings, caller: Caller, scopes: Scope[], offline: boolean) {
  const access = new Access(caller, settings);
  const claims: AccessClaim[] = [];
  for (const scope of scopes) {
    if (scope.type === "registry") {
      claims.push({ ...scope, actions: [...scope.actions] });
      continue;
    }
    const allowed = await access.actionsOn(scope.name);
    claims.push({ type: "repository", name: scope.name, actions: scope.actions.filter((action) => allowed.has(action)) });
  }
  const subject = caller.kind === "user" || caller.kind === "robot" ? caller.name : "";
  const authority = await tokenAuthority(settings.tokenKeys);
  const issued = await authority.issueAccess(settings.audience, subject, claims);
  const fingerprint = offline && caller.kind === "user" ? await loginFingerprint(caller.name, settings.store, settings.admin) : null;
  const refresh = fingerprint === null ? {} : { refresh_token: await authority.issueRefresh(settings.audience, subject, fingerprint) };
  c.header("Cache-Control", "no-store");
  return { token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt.toISOString(), ...refresh };
}
