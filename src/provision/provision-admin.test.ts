import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../cli/index.js';
import { isYcError } from '../lib/errors.js';
import { parseLookupType } from './provision-admin.js';

test('lookup types: A by default, case-insensitive, others refused with the list', () => {
  assert.equal(parseLookupType(undefined), 'A');
  assert.equal(parseLookupType('ptr'), 'PTR');
  assert.throws(() => parseLookupType('MX'), (e) => isYcError(e, 'BAD_INPUT') && /A, PTR, SRV, NS, SOA/.test(e.message));
});

test('bad CLI input is refused before etcd is asked (no etcd listens on this port)', async () => {
  const cases: [string[], RegExp][] = [
    [['dns', 'lookup', 'c1', '--type', 'MX'], /unknown record type "MX"/],
    [['dns', 'lookup'], /dns lookup: missing NAME/],
    [['dns', 'resolve', 'x'], /unknown dns command "resolve"/],
    [['dhcp', 'release', 'zz:00'], /malformed MAC/],
    [['dhcp', 'release'], /dhcp release: missing MAC/],
    [['dhcp', 'nope'], /unknown dhcp command "nope"/],
    [['boot', 'show', 'not-a-mac'], /malformed MAC/],
    [['boot', 'configure', '--kernal', 'http://x/k'], /Unknown option '--kernal'/],
  ];
  for (const [args, want] of cases) {
    let err = '';
    const code = await runCli([...args, '--etcd', '127.0.0.1:1'], { out: () => undefined, err: (t) => (err += t) }, {}, {});
    assert.equal(code, 1, `${args.join(' ')}: ${err}`);
    assert.match(err, want, args.join(' '));
  }
});
