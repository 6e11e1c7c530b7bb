// Runs `meshproof <args>` in this process (main() as bin/meshproof.js calls it), capturing what it writes.
import { main } from '../../src/harness/cli/main.ts';

export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const w1 = process.stdout.write;
  const w2 = process.stderr.write;
  process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'meshproof', ...args]);
    return { code, out, err };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
}
