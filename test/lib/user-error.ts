// The message of the UserError a call throws (the test fails when it throws anything else, or nothing).
import { expect } from 'chai';
import { UserError } from '../../src/harness/model/errors.ts';

export function userError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}
