import { calculateJwkThumbprint, createLocalJWKSet, importJWK, jwtVerify, SignJWT, type JWK } from "jose";
import * as z from "zod";

/*
 * Registry tokens (distribution's token spec): JWTs signed with ES256. The
 * secret TOKEN_KEYS holds a JSON array of private JWKs: the first signs, and
 * every one verifies, so a new key is put first and the old one kept until
 * the tokens it signed have expired. Each key's id is its JWK thumbprint.
 */

const ALGORITHM = "ES256";
/** Clocks of the Worker's machines and the clients' differ a little. */
const LEEWAY_SECONDS = 60;
/** Access tokens are short-lived: a client asks again, and policy changes reach it soon. */
const ACCESS_TOKEN_SECONDS = 300;
/** Refresh tokens (`offline_token`, `access_type=offline`) stand for a login. */
const REFRESH_TOKEN_SECONDS = 30 * 24 * 60 * 60;

/** An entry of a token's `access` claim: what it grants on one resource. */
export interface AccessClaim {
  type: string;
  name: string;
  actions: string[];
}

const ACCESS = z.array(z.object({ type: z.string(), name: z.string(), actions: z.array(z.string()) }));
const PRIVATE_KEYS = z.array(z.looseObject({ kty: z.literal("EC"), crv: z.literal("P-256"), d: z.string(), x: z.string(), y: z.string() })).min(1);

/** Who a token is for and the service that accepts it. */
export interface Audience {
  /** The registry's origin, which issues the token. */
  issuer: string;
  /** The service name the client was told in the challenge: the registry's host. */
  service: string;
}

type TokenUse = "access" | "refresh";

export class TokenAuthority {
  private constructor(
    private readonly signingKey: CryptoKey,
    private readonly keyId: string,
    private readonly verifyingKeys: ReturnType<typeof createLocalJWKSet>,
  ) {}

  static async fromSecret(secret: string): Promise<TokenAuthority> {
    let parsed: z.infer<typeof PRIVATE_KEYS>;
    try {
      parsed = PRIVATE_KEYS.parse(JSON.parse(secret));
    } catch {
      throw new Error("TOKEN_KEYS must be a JSON array of private P-256 JWKs");
    }
    const publicKeys: JWK[] = await Promise.all(
      parsed.map(async ({ kty, crv, x, y }) => ({ kty, crv, x, y, alg: ALGORITHM, use: "sig", kid: await calculateJwkThumbprint({ kty, crv, x, y }) })),
    );
    const signingKey = (await importJWK({ ...parsed[0]!, alg: ALGORITHM }, ALGORITHM)) as CryptoKey;
    return new TokenAuthority(signingKey, publicKeys[0]!.kid!, createLocalJWKSet({ keys: publicKeys }));
  }

  /** A token granting `access` to `subject` (empty for an anonymous caller). */
  async issueAccess(audience: Audience, subject: string, access: AccessClaim[]): Promise<{ token: string; expiresIn: number; issuedAt: Date }> {
    const issuedAt = new Date();
    const token = await this.#sign(audience, subject, "access", ACCESS_TOKEN_SECONDS, { access });
    return { token, expiresIn: ACCESS_TOKEN_SECONDS, issuedAt };
  }

  /**
   * A long-lived token that stands for `subject`'s login: traded for access
   * tokens without the password, for as long as the login's `fingerprint`
   * (which a new password changes) stays the same.
   */
  issueRefresh(audience: Audience, subject: string, fingerprint: string): Promise<string> {
    return this.#sign(audience, subject, "refresh", REFRESH_TOKEN_SECONDS, { login: fingerprint });
  }

  /** The subject and access of a valid access token for this audience, or null. */
  async verifyAccess(audience: Audience, token: string): Promise<{ subject: string; access: AccessClaim[] } | null> {
    const payload = await this.#verify(audience, token, "access");
    const access = ACCESS.safeParse(payload?.access);
    return payload && access.success ? { subject: payload.sub ?? "", access: access.data } : null;
  }

  /** The subject and login fingerprint of a valid refresh token for this audience, or null. */
  async verifyRefresh(audience: Audience, token: string): Promise<{ subject: string; fingerprint: string } | null> {
    const payload = await this.#verify(audience, token, "refresh");
    return payload?.sub && typeof payload.login === "string" ? { subject: payload.sub, fingerprint: payload.login } : null;
  }

  #sign(audience: Audience, subject: string, use: TokenUse, seconds: number, claims: Record<string, unknown>): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ ...claims, token_use: use })
      .setProtectedHeader({ alg: ALGORITHM, kid: this.keyId, typ: "JWT" })
      .setIssuer(audience.issuer)
      .setAudience(audience.service)
      .setSubject(subject)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + seconds)
      .setJti(crypto.randomUUID())
      .sign(this.signingKey);
  }

  async #verify(audience: Audience, token: string, use: TokenUse) {
    try {
      const { payload } = await jwtVerify(token, this.verifyingKeys, {
        algorithms: [ALGORITHM],
        issuer: audience.issuer,
        audience: audience.service,
        clockTolerance: LEEWAY_SECONDS,
        requiredClaims: ["exp", "nbf", "jti"],
      });
      return payload.token_use === use ? payload : null;
    } catch {
      // Expired, not yet valid, for another service, signed by a key not ours, or not a JWT at all.
      return null;
    }
  }
}

const authorities = new Map<string, Promise<TokenAuthority>>();

/** The authority for a TOKEN_KEYS secret, its keys imported once per isolate. */
export function tokenAuthority(secret: string | undefined): Promise<TokenAuthority> {
  if (!secret) throw new Error("the secret TOKEN_KEYS is not set (npm run admin -- keys shows how to make one)");
  let authority = authorities.get(secret);
  if (!authority) {
    authority = TokenAuthority.fromSecret(secret);
    authorities.set(secret, authority);
  }
  return authority;
}
