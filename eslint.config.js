// ESLint flat config: typescript-eslint's recommended rules over the whole tree.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'reports/', '.cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
  // DESIGN.md seam 1 (Substrate port): suites and profiles start a Cluster with upCluster and use the Cluster
  // interface; which substrate runs is the run's choice (--substrate), so none of them imports an implementation.
  {
    files: ['suites/**/*.ts', 'src/harness/profiles/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          group: ['**/substrate/netns', '**/substrate/netns/**', '**/substrate/docker', '**/substrate/docker/**', '**/substrate/kind', '**/substrate/kind/**'],
          message: "DESIGN.md seam 1 (Substrate port): suites and profiles get the substrate from the run (--substrate), never a literal — start it with upCluster (substrate/index.ts) and use the Cluster interface (substrate/types.ts).",
        }],
      }],
    },
  },
  // DESIGN.md seam 3: the kube layer's node agent and the istiod control plane run Pods through the Cluster port
  // (substrate/types.ts), network policy included (Cluster.applyNetworkPolicy); only what is truly node-level stays
  // netns-specific: the API server's processes in the node namespace (kube/apiserver.ts) and the kubelet API's relay
  // and container processes (kube/node-netns.ts) — the only files that may take the netns Cluster (netnsCluster).
  {
    files: ['src/harness/kube/**/*.ts', 'src/harness/controlplane/**/*.ts'],
    ignores: ['src/harness/kube/apiserver.ts', 'src/harness/kube/node-netns.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          group: ['**/substrate/netns', '**/substrate/netns/**', '**/substrate/docker', '**/substrate/docker/**', '**/substrate/kind', '**/substrate/kind/**'],
          message: "DESIGN.md seam 3: the kube layer runs Pods through the Cluster port (substrate/types.ts), not a substrate implementation; node-level netns code lives in kube/apiserver.ts and kube/node-netns.ts.",
        }, {
          group: ['**/substrate/index.ts', '**/substrate/index', '**/substrate'],
          importNames: ['netnsCluster'],
          message: "DESIGN.md seam 3: the kube layer uses the Cluster port on every substrate (network policy: Cluster.applyNetworkPolicy); only kube/apiserver.ts and kube/node-netns.ts may take the netns Cluster.",
        }],
      }],
    },
  },
  // DESIGN.md rules of the house: model/ and dataplane/ are pure (data in, text out: nothing that does I/O), and
  // dataplane/ imports no profile (the profiles hand it plans from model/).
  {
    files: ['src/harness/model/**/*.ts', 'src/harness/dataplane/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['fs', 'fs/promises', 'child_process', 'net', 'dgram', 'http', 'https', 'http2', 'tls', 'os', 'worker_threads'].flatMap((m) => [m, `node:${m}`]).map((name) => ({
          name,
          message: 'DESIGN.md: model/ and dataplane/ import nothing that does I/O — the driver (profiles/) hands their output to the Cluster.',
        })),
        patterns: [{
          group: ['**/substrate/**', '**/kube/**', '**/controlplane/**', '**/cli/**', '**/load/**', '**/report/**', '**/probe/client.ts', '**/profiles/**', '**/workloads/**'],
          message: 'DESIGN.md: model/ and dataplane/ import only model/ (and each other): no profile, substrate, kube, control plane, CLI, load or report module.',
        }],
      }],
    },
  },
);
