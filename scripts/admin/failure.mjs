/** What a command could not do, told in a sentence, and the exit status to end with. */
export class Failure extends Error {
  constructor(message, status = 1) {
    super(message);
    this.status = status;
  }
}

/** A command used wrongly: exit status 2, as shells' builtins do. */
export function usageFailure(message) {
  return new Failure(`${message}\n(npm run admin -- help lists the commands)`, 2);
}
