import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../state/schema.js';
import { applySetting, semanticErrors } from './config-edit.js';

test('the default config is valid', () => {
  assert.deepEqual(semanticErrors(defaultConfig), []);
});

test('a dotted setting changes one field and is validated', () => {
  const next = applySetting(defaultConfig, 'ranges.compute.end', '10.0.0.65');
  assert.equal(next.ranges.compute.end, '10.0.0.65');
  assert.equal(defaultConfig.ranges.compute.end, '10.0.0.70', 'the input is not modified');
  assert.equal(applySetting(defaultConfig, 'electionTtlSeconds', '5').electionTtlSeconds, 5);
});

test('unknown keys, bad values, overlapping ranges and VIPs inside ranges are refused with the reason', () => {
  assert.throws(() => applySetting(defaultConfig, 'ranges.toaster.end', '1'), /unknown config key "ranges.toaster.end"/);
  assert.throws(() => applySetting(defaultConfig, 'electionTtlSeconds', '1'), /electionTtlSeconds/);
  assert.throws(() => applySetting(defaultConfig, 'ranges.compute.start', '10.0.0.20'), /ranges.storage and ranges.compute overlap/);
  assert.throws(() => applySetting(defaultConfig, 'storageVip', '10.0.0.55'), /VIP 10.0.0.55 lies inside ranges.compute/);
  assert.throws(() => applySetting(defaultConfig, 'gatewayVip', '192.168.1.1'), /outside the network/);
  assert.throws(() => applySetting(defaultConfig, 'ranges.compute.end', '10.0.0.50'), /start is after end/);
});
