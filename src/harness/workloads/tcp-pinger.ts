// A long-lived TCP client: one connection, a numbered ping every interval, each answer checked
// (the tcp-listener echoes `<serverId>:<bytes>`). One line per event on stdout, so a suite can read
// from the log whether a connection survived something (an HAProxy reload) without a break.
//   connected <local port>
//   ok <n> <serverId>          the answer to ping n came back on the same connection
//   closed <n> | error <n> <code>
//   done <n>
import { connect } from 'node:net';
import { parseFlags, parsePort, usage } from './common.ts';

export async function runTcpPinger(args: readonly string[]): Promise<void> {
  const flags = parseFlags('tcp-pinger', args, ['host', 'port', 'count', 'interval-ms'] as const);
  if (!flags.host || !flags.port) throw usage('tcp-pinger: --host and --port are required');
  const port = parsePort('tcp-pinger --port', flags.port);
  const count = Number(flags.count ?? 50);
  const intervalMs = Number(flags['interval-ms'] ?? 100);
  if (!Number.isInteger(count) || count < 1 || count > 10_000) throw usage('tcp-pinger: --count must be 1..10000');
  if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > 10_000) throw usage('tcp-pinger: --interval-ms must be 1..10000');
  const say = (line: string) => process.stdout.write(`${line}\n`);
  await new Promise<void>((resolve) => {
    const sock = connect({ host: flags.host!, port });
    let n = 0;
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = (line: string) => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      say(line);
      sock.destroy();
      resolve();
    };
    const ping = () => {
      n++;
      sock.write(`ping ${n}\n`);
      // an answer must come before the next ping is due (bounded: a missing answer ends the run)
      timer = setTimeout(() => finish(`error ${n} no-answer`), Math.max(1000, intervalMs * 5));
    };
    sock.on('connect', () => {
      say(`connected ${sock.localPort}`);
      ping();
    });
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const m = new RegExp(`^(\\S+):ping ${n}\\n`).exec(buf);
      if (!m) return;
      buf = '';
      if (timer) clearTimeout(timer);
      say(`ok ${n} ${m[1]}`);
      if (n >= count) return finish(`done ${n}`);
      timer = setTimeout(ping, intervalMs);
    });
    sock.on('end', () => finish(`closed ${n}`));
    sock.on('error', (e: NodeJS.ErrnoException) => finish(`error ${n} ${e.code ?? e.message}`));
  });
}
