import type { RepositoryName } from "../oci/names";
import type { Grant } from "../storage/access";
import type { AccessClaim } from "./tokens";
import { ACTIONS, matchesPattern, namespaceOf, ROLE_ACTIONS, type Action } from "./scopes";

/**
 * Who is calling, as far as the registry can tell from the request:
 * everyone at once when auth is off; nobody in particular; a user or robot
 * whose credentials were checked, with their grants; or the bearer of a token,
 * whose grants are its claims.
 */
export type Caller =
  | { kind: "anyone" }
  | { kind: "anonymous" }
  | { kind: "user"; name: string; admin: boolean; grants: Grant[] }
  | { kind: "robot"; name: string; grants: Grant[] }
  | { kind: "token"; subject: string; access: AccessClaim[] };

/** A caller whose grants the registry looks up, rather than reads from a token. */
export type Principal = Extract<Caller, { kind: "anonymous" | "user" | "robot" }>;

/**
 * What a principal may do to a repository: everything for an administrator
 * or in the user's own namespace, what their grants or a robot's scopes give
 * on its namespace, and pull where the namespace is public.
 */
export function principalActions(principal: Principal, repository: RepositoryName, namespaceIsPublic: boolean): Set<Action> {
  const namespace = namespaceOf(repository);
  if (principal.kind === "user" && (principal.admin || principal.name === namespace)) return new Set(ACTIONS);
  const actions = new Set<Action>(namespaceIsPublic ? ["pull"] : []);
  if (principal.kind === "anonymous") return actions;
  for (const grant of principal.grants) {
    if (matchesPattern(namespace, grant.pattern)) for (const action of ROLE_ACTIONS[grant.role]) actions.add(action);
  }
  return actions;
}

/** What a token's claims grant on a repository. */
export function tokenActions(access: readonly AccessClaim[], repository: RepositoryName): Set<Action> {
  const granted = access.filter((claim) => claim.type === "repository" && claim.name === repository).flatMap((claim) => claim.actions);
  return new Set(ACTIONS.filter((action) => granted.includes(action)));
}

/** Whether a token's claims include the catalog. */
export function tokenGrantsCatalog(access: readonly AccessClaim[]): boolean {
  return access.some((claim) => claim.type === "registry" && claim.name === "catalog" && claim.actions.includes("*"));
}
