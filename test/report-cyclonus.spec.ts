// The Cyclonus-style printer (report/cyclonus.ts): exact text for a small hand-written input.
import { expect } from 'chai';
import { cyclonusTable, type CyclonusCell } from '../src/harness/report/cyclonus.ts';

const cell = (from: string, to: string, protocol: string, port: number, expected: 'allowed' | 'denied', observed: 'allowed' | 'denied', pass = expected === observed, detail?: string): CyclonusCell =>
  detail === undefined ? { from, to, protocol, port, expected, observed, pass } : { from, to, protocol, port, expected, observed, pass, detail };

describe('report: Cyclonus-style table', () => {
  it('prints expected, observed and the comparison, one mark per port in the header order, then the wrong cells and the tally', () => {
    const cells = [
      cell('sleep', 'b', 'http', 80, 'allowed', 'allowed'),
      cell('sleep', 'b', 'tcp', 9090, 'allowed', 'allowed', false, 'want allowed:mtls, got allowed:plaintext'),
      cell('sleep', 'naked', 'http', 80, 'denied', 'denied'),
      cell('sleep', 'naked', 'tcp', 9090, 'denied', 'denied'),
      cell('sleep-naked', 'b', 'http', 80, 'denied', 'allowed', false),
      cell('sleep-naked', 'b', 'tcp', 9090, 'denied', 'denied'),
      cell('sleep-naked', 'naked', 'http', 80, 'allowed', 'allowed'),
    ];
    expect(cyclonusTable('reachability: global mtls strict', cells)).to.equal(
      [
        'reachability: global mtls strict',
        'expected:',
        'http/80 tcp/9090 | b   | naked',
        'sleep            | . . | X X',
        'sleep-naked      | X X | . -',
        '',
        'observed:',
        'http/80 tcp/9090 | b   | naked',
        'sleep            | . . | X X',
        'sleep-naked      | . X | . -',
        '',
        'observed vs expected (. same, X different):',
        'http/80 tcp/9090 | b   | naked',
        'sleep            | . X | . .',
        'sleep-naked      | X . | . -',
        'wrong: sleep → b tcp/9090: want allowed:mtls, got allowed:plaintext',
        'wrong: sleep-naked → b http/80',
        '2 wrong, 5 correct',
      ].join('\n'),
    );
  });

  it('an empty input is an empty table with a zero tally', () => {
    expect(cyclonusTable('t', [])).to.equal(['t', 'expected:', ' |', '', 'observed:', ' |', '', 'observed vs expected (. same, X different):', ' |', '0 wrong, 0 correct'].join('\n'));
  });
});
