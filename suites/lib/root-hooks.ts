// mocha root hooks (.mocharc.yml `require`): before the first suite, start what the suites share where that takes
// longer than a suite's hook may (a kind cluster: controlplane/index.ts warmSharedMesh); after the last, stop it.
import type { Context } from 'mocha';
import { KIND_WARM_TIMEOUT_MS, warmSharedMesh } from '../../src/harness/controlplane/index.ts';
import { endOfRun } from '../../src/harness/controlplane/shared.ts';

export const mochaHooks = {
  async beforeAll(this: Context): Promise<void> {
    this.timeout(KIND_WARM_TIMEOUT_MS);
    await warmSharedMesh();
  },
  async afterAll(): Promise<void> {
    await endOfRun();
  },
};
