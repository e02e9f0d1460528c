import { generateKeyPairSync } from "node:crypto";
import { Failure } from "./failure.mjs";

/** The keys of a TOKEN_KEYS value: a JSON array of private P-256 JWKs. */
function keysOf(secret) {
  let keys;
  try {
    keys = JSON.parse(secret);
  } catch {
    keys = null;
  }
  if (!Array.isArray(keys) || !keys.every((key) => key?.kty === "EC" && key.crv === "P-256" && typeof key.d === "string")) {
    throw new Failure("TOKEN_KEYS in the environment must be a JSON array of private P-256 JWKs");
  }
  return keys;
}

export const keys = {
  title: "Token keys: the secret TOKEN_KEYS, whose first key signs registry tokens and every key verifies them",
  commands: [
    {
      words: ["keys"],
      args: [],
      offline: true,
      summary:
        "Prints a TOKEN_KEYS value: a new private key, then the keys of TOKEN_KEYS in the environment if set (to rotate).\n" +
        "Pipe it on: npm run --silent admin -- keys | npx wrangler secret put TOKEN_KEYS",
      run({ env }) {
        const answer = [generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }), ...(env.TOKEN_KEYS ? keysOf(env.TOKEN_KEYS) : [])];
        return { answer, text: [JSON.stringify(answer)] };
      },
    },
  ],
};
