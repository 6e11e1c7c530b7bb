// Running host commands (ip, iptables-restore, ...) with their stderr in the error.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { ExecResult } from './types.ts';

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface Streaming {
  child: ChildProcessByStdio<Writable, Readable, Readable>;
  /** Exit code (128 when a signal killed it, named in `signal`); rejects when it could not start. */
  exited: Promise<{ code: number; signal: NodeJS.Signals | null }>;
}

/** Starts argv with its stdin, stdout and stderr as pipes the caller streams (the kubelet API's exec); runCapture is this, collected. */
export function spawnStreams(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Streaming {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
  child.stdin.on('error', () => undefined);
  const exited = new Promise<{ code: number; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), signal }));
  });
  exited.catch(() => undefined); // runCapture reports a start failure through the child's 'error'
  return { child, exited };
}

/** Runs argv, resolves with code/stdout/stderr whatever the exit code. */
export function runCapture(argv: string[], opts: RunOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const { child } = spawnStreams(argv, { env: opts.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs argv and throws an Error naming the command and its stderr when it fails. */
export async function run(argv: string[], opts: RunOptions = {}): Promise<string> {
  const r = await runCapture(argv, opts);
  if (r.code !== 0) {
    const what = argv.slice(0, 4).join(' ');
    throw new Error(`${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  }
  return r.stdout;
}
