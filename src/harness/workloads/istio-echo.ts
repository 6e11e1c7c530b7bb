// Istio's echo app (gcr.io/istio-testing/app, pkg/test/framework/components/echo) as meshproof runs it, one
// program per containerPort. Istio's deployment template gives each port a flag by its protocol (`--tcp=<port>`,
// `--server-first=<port>`, `--port=<port>`); meshproof reads the port's name instead (the profile reads no args),
// with the names of common/ports/ports.go. Pure: the profile and the kube layer's image map both use it.

export interface EchoPortProgram {
  workload: 'tcp-listener' | 'echo';
  args: string[];
}

/**
 * A port named `tcp[-suffix]` is a raw TCP echo (the tcp-listener, answering `<id>:<bytes>`); `tcp-server[-suffix]`
 * (ports.go TCPServer, ServerFirst) also writes Istio's magic string on accept; any other port is the HTTP echo
 * (HTTP/1.1, h2c, gRPC and WebSocket on one port, as the echo's http/http2/grpc ports).
 */
export function istioEchoPort(port: number, name: string | undefined, id: string): EchoPortProgram {
  const n = (name ?? '').toLowerCase();
  if (n.split('-')[0] !== 'tcp') return { workload: 'echo', args: ['--port', String(port)] };
  const args = ['--port', String(port), '--id', id];
  if (n === 'tcp-server' || n.startsWith('tcp-server-')) args.push('--server-first', String(port));
  return { workload: 'tcp-listener', args };
}
