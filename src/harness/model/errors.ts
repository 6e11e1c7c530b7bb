// One-line user-facing errors: a message that names the fix, and the exit code to leave with.

/** Exit codes of the `meshproof` command (issue: 0 pass, 1 conformance failure, 2 usage or environment). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export class UserError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.usage) {
    super(message);
    this.name = 'UserError';
  }
}
