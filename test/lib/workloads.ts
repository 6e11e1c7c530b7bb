// Calling the in-process workloads over real loopback sockets: plain GET, and the echo's `Key=value` answer lines.
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export const HOST = '127.0.0.1';
export const quiet = (): void => undefined;

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function get(port: number, path = '/', headers: OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: HOST, port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Lines `Key=value` of an echo body, by key (repeated keys keep every value). */
export function echoFields(body: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of body.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}
