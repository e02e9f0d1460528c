import { parseDigest, type Digest } from "./digest";
import { RegistryError } from "./errors";

// The spec's grammar for <name> and <tag>.
const NAME_COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const NAME_GRAMMAR = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_GRAMMAR = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** A GLOB over tags: their characters and * ? [ ] ^; D1 refuses GLOB patterns over 50 bytes. */
export const TAG_PATTERN = /^[a-zA-Z0-9._*?[\]^-]{1,50}$/;
// distribution's limit: the name must fit a 255-character reference with a host.
const MAX_NAME_LENGTH = 255;

export type RepositoryName = string & { readonly __name: unique symbol };
export type Tag = string & { readonly __tag: unique symbol };

/** A manifest reference is either a tag or a digest; the kind says which. */
export type Reference = { kind: "tag"; tag: Tag } | { kind: "digest"; digest: Digest };

export function isRepositoryName(value: string): value is RepositoryName {
  return value.length <= MAX_NAME_LENGTH && NAME_GRAMMAR.test(value);
}

export function parseRepositoryName(value: string): RepositoryName {
  if (!isRepositoryName(value)) throw new RegistryError("NAME_INVALID", `invalid repository name "${value.slice(0, 300)}"`);
  return value;
}

function isTag(value: string): value is Tag {
  return TAG_GRAMMAR.test(value);
}

export function parseTag(value: string): Tag {
  if (!isTag(value)) throw new RegistryError("TAG_INVALID", `invalid tag "${value.slice(0, 200)}"`);
  return value;
}

export function parseReference(value: string): Reference {
  if (value.includes(":")) return { kind: "digest", digest: parseDigest(value) };
  return { kind: "tag", tag: parseTag(value) };
}
