// mocha root hooks (.mocharc.yml `require`): after the last suite, stop what the suites shared (a control plane).
import { endOfRun } from '../../src/harness/controlplane/shared.ts';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await endOfRun();
  },
};
