// The kubelet API's pure parts (src/harness/kube/kubelet-api.ts): its routes (the kubelet server's paths), protocol
// negotiation (httpstream.Handshake), log options (PodLogOptions and what a log file without times cannot answer),
// the v4 exec status JSON (remotecommand ServeExec: what kubectl turns into its exit code), and exec.LookPath.
import { expect } from 'chai';
import { EXEC_PROTOCOLS, execStatus, lookPath, negotiate, parseLogOptions, PORT_FORWARD_PROTOCOLS, routeOf, tailLines } from '../src/harness/kube/kubelet-api.ts';

describe('kubelet API: routes, handshake, options, status', () => {
  it('routes the paths the API server builds (pkg/registry/core/pod/strategy.go) and nothing else', () => {
    expect(routeOf('/containerLogs/default/sleep-1/istio-proxy')).to.deep.equal({ kind: 'logs', namespace: 'default', pod: 'sleep-1', container: 'istio-proxy' });
    expect(routeOf('/exec/default/sleep-1/sleep')).to.deep.equal({ kind: 'exec', namespace: 'default', pod: 'sleep-1', container: 'sleep' });
    expect(routeOf('/exec/default/sleep-1/u-1/sleep')).to.deep.equal({ kind: 'exec', namespace: 'default', pod: 'sleep-1', uid: 'u-1', container: 'sleep' });
    expect(routeOf('/portForward/istio-system/istiod-x')).to.deep.equal({ kind: 'portForward', namespace: 'istio-system', pod: 'istiod-x' });
    expect(routeOf('/portForward/istio-system/istiod-x/u-2')).to.deep.equal({ kind: 'portForward', namespace: 'istio-system', pod: 'istiod-x', uid: 'u-2' });
    expect(routeOf('/attach/default/a/b')).to.deep.equal({ kind: 'attach', namespace: 'default', pod: 'a', container: 'b' });
    expect(routeOf('/healthz')).to.deep.equal({ kind: 'healthz' });
    for (const p of ['/', '/pods', '/stats/summary', '/containerLogs/default/a', '/exec/default//c', '/portForward/a/b/c/d', '/exec/%zz/a/b']) expect(routeOf(p), p).to.equal(null);
  });

  it('negotiates the first protocol the client lists that is served, across comma lists and repeated headers', () => {
    // what the API server's SPDY executor offers (client-go remotecommand: v5, v4, v3, v2)
    expect(negotiate(['v5.channel.k8s.io, v4.channel.k8s.io', 'v3.channel.k8s.io'], EXEC_PROTOCOLS)).to.equal('v4.channel.k8s.io');
    expect(negotiate(['portforward.k8s.io'], PORT_FORWARD_PROTOCOLS)).to.equal('portforward.k8s.io');
    expect(negotiate(['v2.channel.k8s.io'], EXEC_PROTOCOLS)).to.equal(null);
    expect(negotiate([], EXEC_PROTOCOLS)).to.equal(null);
  });

  it('reads PodLogOptions; refuses what a log file without per-line times cannot answer', () => {
    const q = (s: string) => parseLogOptions(new URLSearchParams(s));
    expect(q('')).to.deep.equal({ follow: false, previous: false });
    expect(q('follow=true&tailLines=20&limitBytes=100')).to.deep.equal({ follow: true, previous: false, tailLines: 20, limitBytes: 100 });
    expect(q('tail=5')).to.deep.equal({ follow: false, previous: false, tailLines: 5 });
    expect(q('tail=all&previous=true')).to.deep.equal({ follow: false, previous: true });
    expect(q('stream=All')).to.deep.equal({ follow: false, previous: false });
    for (const bad of ['tailLines=-1', 'tailLines=x', 'limitBytes=0']) expect(q(bad), bad).to.deep.equal({ error: '{"message": "Invalid request."}' });
    for (const none of ['timestamps=true', 'sinceSeconds=10', 'sinceTime=2026-12-01T00:00:00Z']) expect(q(none), none).to.have.property('error').that.includes('without per-line times');
    expect(q('stream=Stdout')).to.have.property('error').that.includes('"Stdout"');
  });

  it('keeps the last n lines, a final line without a newline included', () => {
    const t = (s: string, n: number) => tailLines(Buffer.from(s), n).toString();
    expect(t('a\nb\nc\n', 2)).to.equal('b\nc\n');
    expect(t('a\nb\nc', 2)).to.equal('b\nc');
    expect(t('a\nb\n', 5)).to.equal('a\nb\n');
    expect(t('a\nb\n', 0)).to.equal('');
    expect(t('', 3)).to.equal('');
  });

  it('writes the error stream status kubectl reads: success, the exit code as cause, an internal error', () => {
    expect(JSON.parse(execStatus({ code: 0, signal: null }))).to.deep.equal({ metadata: {}, status: 'Success' });
    expect(JSON.parse(execStatus({ code: 3, signal: null }))).to.deep.equal({
      metadata: {}, status: 'Failure', message: 'command terminated with non-zero exit code: exit status 3', reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });
    expect(JSON.parse(execStatus({ code: 128, signal: 'SIGKILL' }))).to.deep.include({
      status: 'Failure', reason: 'InternalError', code: 500, message: 'Internal error occurred: error executing command in container: signal: killed',
    });
    expect(JSON.parse(execStatus({ error: 'exec: "x": executable file not found in $PATH' })).details).to.deep.equal({
      causes: [{ message: 'error executing command in container: exec: "x": executable file not found in $PATH' }],
    });
  });

  it('looks a command up in the container PATH as exec.LookPath does', () => {
    const present = new Set(['/usr/bin/id', '/w/bin/tool', '/w/rel']);
    const has = (p: string) => present.has(p);
    expect(lookPath('id', '/usr/local/bin:/usr/bin', '/w', has)).to.equal('/usr/bin/id');
    expect(lookPath('nope', '/usr/local/bin:/usr/bin', '/w', has)).to.equal(null);
    expect(lookPath('/w/bin/tool', '', '/w', has)).to.equal('/w/bin/tool');
    expect(lookPath('./rel', '/usr/bin', '/w', has)).to.equal('/w/rel');
    expect(lookPath('bin/tool', '/usr/bin', '/elsewhere', has)).to.equal(null);
  });
});
