import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/etcd.js';
import { StateClient } from '../../src/state/client.js';
import { keys } from '../../src/state/keys.js';
import { defaultConfig } from '../../src/state/schema.js';
import { waitFor } from '../../src/lib/time.js';

let dir: string;
let etcd: ChildProcess | undefined;
let port: number;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'yc-tls-'));
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=yc-test-ca']);
  for (const who of ['server', 'client']) {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`]);
    openssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '1', '-extfile', 'san.cnf']);
  }
  port = await freePort();
  const peer = await freePort();
  etcd = spawn('etcd', [
    '--name', 'tls', '--data-dir', join(dir, 'data'),
    '--listen-client-urls', `https://127.0.0.1:${port}`, '--advertise-client-urls', `https://127.0.0.1:${port}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `tls=http://127.0.0.1:${peer}`,
    '--cert-file', join(dir, 'server.crt'), '--key-file', join(dir, 'server.key'),
    '--client-cert-auth', '--trusted-ca-file', join(dir, 'ca.crt'), '--log-level', 'error',
  ], { stdio: 'ignore' });
  await waitFor('etcd with TLS', () => {
    try {
      execFileSync('etcdctl', ['--endpoints', `https://127.0.0.1:${port}`, '--cacert', join(dir, 'ca.crt'), '--cert', join(dir, 'client.crt'), '--key', join(dir, 'client.key'), 'endpoint', 'health'], { stdio: 'ignore', env: { ...process.env, ETCDCTL_API: '3' } });
      return true;
    } catch {
      return undefined;
    }
  }, { timeoutMs: 20_000, intervalMs: 200 });
});

after(() => {
  etcd?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('the state client talks to an etcd that requires client certificates', async () => {
  const state = new StateClient({ endpoints: [`127.0.0.1:${port}`], tls: { ca: join(dir, 'ca.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key') } });
  try {
    await state.put(keys.config, defaultConfig);
    assert.deepEqual(await state.getValue(keys.config), defaultConfig);
  } finally {
    state.close();
  }
});

test('without a client certificate the same etcd refuses the client', async () => {
  const state = new StateClient({ endpoints: [`127.0.0.1:${port}`], tls: { ca: join(dir, 'ca.crt') }, callTimeoutMs: 2000 });
  try {
    await assert.rejects(state.getValue(keys.config), (e: Error) => /etcd unavailable/.test(e.message));
  } finally {
    state.close();
  }
});
