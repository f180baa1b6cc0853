import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isYcError } from '../lib/errors.js';
import { decideType, parseMacPrefix } from './type-rules.js';

const rules = [
  { prefix: 'aa:bb', type: 'compute' as const },
  { prefix: 'aa:bb:cc', type: 'storage' as const },
];

test('a registration wins over rules and the reported type', () => {
  assert.deepEqual(decideType('aa:bb:cc:00:00:01', 'frontend', rules, 'macos'), { type: 'frontend', source: 'registration' });
});

test('the longest matching prefix rule wins', () => {
  assert.deepEqual(decideType('aa:bb:cc:00:00:01', undefined, rules, 'macos'), { type: 'storage', source: 'rule' });
  assert.deepEqual(decideType('aa:bb:dd:00:00:01', undefined, rules, 'macos'), { type: 'compute', source: 'rule' });
});

test('the reported type is used when nothing else matches, compute otherwise', () => {
  assert.deepEqual(decideType('11:22:33:44:55:66', undefined, rules, 'macos'), { type: 'macos', source: 'reported' });
  assert.deepEqual(decideType('11:22:33:44:55:66', undefined, rules, undefined), { type: 'compute', source: 'default' });
});

test('MAC prefixes: 1 to 6 two-digit octets with one kind of separator, stored lower-case with colons', () => {
  assert.equal(parseMacPrefix('52:54:00'), '52:54:00');
  assert.equal(parseMacPrefix(' AA-BB-CC-DD '), 'aa:bb:cc:dd');
  assert.equal(parseMacPrefix('02'), '02');
  assert.equal(parseMacPrefix('02:00:00:00:00:01'), '02:00:00:00:00:01');
  for (const bad of ['', '5', '525400', '52:54:0', '52:54:00:', ':52', '52-54:00', '52:54:00:00:00:00:00', 'gg:00', '52 54 00']) {
    assert.throws(() => parseMacPrefix(bad), (e: unknown) => isYcError(e, 'BAD_INPUT') && e.message.includes('malformed MAC prefix'), bad);
  }
});
