// The UserError a call throws (the test fails when it throws anything else, or nothing).
import { expect } from 'chai';
import { UserError } from '../../src/harness/model/errors.ts';

export function thrownUserError(f: () => unknown): UserError {
  try {
    f();
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

/** Its message. */
export function userError(f: () => unknown): string {
  return thrownUserError(f).message;
}
