import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideType } from './type-rules.js';

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
