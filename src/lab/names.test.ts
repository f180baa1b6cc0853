import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IFNAMSIZ, bridgeName, newLabName, nsName, switchNs, switchPort, validateNodeName } from './names.js';
import { validateLabName } from './registry.js';
import { isYcError } from '../lib/errors.js';

test('new lab names are valid, 6 characters, "yc" prefixed', () => {
  for (let i = 0; i < 200; i++) {
    const n = newLabName();
    assert.match(n, /^yc[a-z0-9]{4}$/);
    validateLabName(n);
  }
  assert.equal(newLabName(() => 0), 'yc0000');
  assert.equal(newLabName(() => 0.999), 'yczzzz');
});

test('namespace and interface names', () => {
  assert.equal(nsName('yc1234', 's1'), 'yc1234-s1');
  assert.equal(switchNs('yc1234'), 'yc1234-sw');
  assert.equal(bridgeName('yc1234'), 'yc1234-br');
  assert.equal(switchPort('yc1234', 'c12'), 'yc1234-c12');
});

test('node names must keep every interface name within IFNAMSIZ', () => {
  validateNodeName('yc1234', 's1');
  validateNodeName('yc1234', 'adm');
  validateNodeName('yc1234', 'node1234'); // 15 characters exactly
  assert.equal(switchPort('yc1234', 'node1234').length, IFNAMSIZ);
  for (const bad of ['node12345', 'S1', '1s', 's-1', '', 'sw', 'br']) {
    assert.throws(() => validateNodeName('yc1234', bad), (e) => isYcError(e, 'BAD_INPUT'), bad);
  }
  assert.throws(() => validateNodeName('bad-lab', 's1'), (e) => isYcError(e, 'BAD_INPUT'));
});
