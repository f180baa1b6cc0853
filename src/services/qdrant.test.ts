import { test } from 'node:test';
import assert from 'node:assert/strict';
import { programArgv } from './postgres.js';
import { QDRANT_NOT_INSTALLED, qdrantEnv, qdrantService, qdrantUnavailable } from './qdrant.js';

const o = { binary: '/nonexistent/qdrant', dataDir: '/vol/qdrant', host: '127.0.0.1', httpPort: 6333, grpcPort: 6334 };

test('qdrant without its binary reports exactly why', () => {
  assert.equal(qdrantUnavailable(o), `${QDRANT_NOT_INSTALLED} (/nonexistent/qdrant)`);
  assert.equal(QDRANT_NOT_INSTALLED, 'qdrant binary not installed');
});

test('qdrant settings come from the environment, storage on the volume', () => {
  const env = qdrantEnv(o);
  assert.equal(env.QDRANT__STORAGE__STORAGE_PATH, '/vol/qdrant/storage');
  assert.equal(env.QDRANT__SERVICE__HTTP_PORT, '6333');
  const asRoot = qdrantService(o);
  assert.equal(asRoot.command, '/nonexistent/qdrant');
  assert.deepEqual(asRoot.env, env);
  const asUser = qdrantService({ ...o, user: 'qdrant' });
  assert.deepEqual(programArgv(asUser), ['/nonexistent/qdrant']);
  assert.ok(asUser.args.includes('QDRANT__SERVICE__GRPC_PORT=6334'), 'settings survive setpriv --reset-env');
});

test('prepare refuses to start a missing binary with the same message', async () => {
  await assert.rejects(qdrantService(o).prepare!(new AbortController().signal), new RegExp(QDRANT_NOT_INSTALLED));
});
