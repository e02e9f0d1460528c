import { isRepositoryName, type RepositoryName } from "../oci/names";

/** What a caller may do to a repository. */
export const ACTIONS = ["pull", "push", "delete"] as const;
export type Action = (typeof ACTIONS)[number];

/** A grant's role: each includes the ones before it (admin: all three). */
export const ROLES = ["pull", "push", "delete", "admin"] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_ACTIONS: Record<Role, readonly Action[]> = {
  pull: ["pull"],
  push: ["pull", "push"],
  delete: ["pull", "push", "delete"],
  admin: ["pull", "push", "delete"],
};

/**
 * A resource a token is asked for or carries, as the token spec writes it:
 * `repository:<name>:<actions>`, or `registry:catalog:*` for the catalog.
 */
export type Scope = { type: "repository"; name: RepositoryName; actions: Action[] } | { type: "registry"; name: "catalog"; actions: ["*"] };

/** The `scope` value a 401 challenge names. */
export function formatScope(scope: Scope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(",")}`;
}

/**
 * Parses the scopes of a token request: `scope` repeated or space-joined.
 * A name may hold a port's colon, so the actions are read from the right.
 * Scopes of unknown types, malformed names or no known action are dropped,
 * as a token grants only what it can name.
 */
export function parseScopes(values: readonly string[]): Scope[] {
  const scopes: Scope[] = [];
  for (const value of values.flatMap((v) => v.split(" ")).filter(Boolean)) {
    const first = value.indexOf(":");
    const last = value.lastIndexOf(":");
    if (first < 0 || last === first) continue;
    const type = value.slice(0, first).replace(/\(.*\)$/, "");
    const name = value.slice(first + 1, last);
    const requested = value.slice(last + 1).split(",");
    if (type === "registry" && name === "catalog" && requested.includes("*")) {
      scopes.push({ type: "registry", name: "catalog", actions: ["*"] });
      continue;
    }
    if (type !== "repository" || !isRepositoryName(name)) continue;
    const actions = ACTIONS.filter((action) => requested.includes(action) || requested.includes("*"));
    if (actions.length > 0) scopes.push({ type: "repository", name, actions });
  }
  return scopes;
}

/** The namespace of a repository: the first component of its name. */
export function namespaceOf(repository: RepositoryName): string {
  const slash = repository.indexOf("/");
  return slash < 0 ? repository : repository.slice(0, slash);
}

/** Namespace patterns: name characters and `*` for any run of them, as SQLite's GLOB reads `*`. */
export const NAMESPACE_PATTERN = /^[a-z0-9._*-]{1,255}$/;

export function matchesPattern(namespace: string, pattern: string): boolean {
  const expression = pattern.replace(/[.]/g, "\\.").replace(/\*/g, ".*");
  return new RegExp(`^${expression}$`).test(namespace);
}
