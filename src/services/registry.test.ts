import { test } from 'node:test';
import assert from 'node:assert/strict';
import { programArgv } from './postgres.js';
import { registryService, renderRegistryConfig } from './registry.js';

test('registry: our own config (filesystem storage on the volume, our address, no auth)', () => {
  const cfg = renderRegistryConfig({ dataDir: '/vol/registry/data', addr: '127.0.0.1:5001' });
  assert.match(cfg, /rootdirectory: "\/vol\/registry\/data"/);
  assert.match(cfg, /addr: "127\.0\.0\.1:5001"/);
  assert.doesNotMatch(cfg, /auth|htpasswd/);
});

test('registry spec: docker-registry serve CONFIG as its own user', () => {
  const spec = registryService({ dataDir: '/vol/r', runDir: '/run/yc/reg', addr: '127.0.0.1:5001' });
  assert.deepEqual(programArgv(spec), ['/usr/bin/docker-registry', 'serve', '/run/yc/reg/registry.yml']);
  assert.ok(spec.args.includes('docker-registry'));
  assert.equal(spec.stopSignal, 'SIGTERM');
});
