#!/usr/bin/env node
// The `meshproof` command: loads the TypeScript CLI through tsx's ESM loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/harness/cli/main.ts');
process.exitCode = await main(process.argv);
