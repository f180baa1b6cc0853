import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asUser, passwdIds, postgresArgv, postgresService, programArgv, renderHba } from './postgres.js';

const o = { dataDir: '/vol/pg/data', runDir: '/run/yc/pg', listen: '127.0.0.1', port: 5433, settings: { fsync: 'on' } };

test('postgres runs in the foreground as the postgres user, data on the volume, fast shutdown on SIGINT', () => {
  const spec = postgresService(o);
  assert.equal(spec.command, 'setpriv');
  assert.deepEqual(spec.args.slice(0, spec.args.indexOf('--')), ['--reuid', 'postgres', '--regid', 'postgres', '--init-groups', '--reset-env']);
  assert.deepEqual(programArgv(spec), postgresArgv(o));
  assert.deepEqual(postgresArgv(o), [
    '/usr/lib/postgresql/15/bin/postgres', '-D', '/vol/pg/data', '-k', '/run/yc/pg', '-c', 'listen_addresses=127.0.0.1', '-p', '5433',
    '-c', 'hba_file=/run/yc/pg/pg_hba.conf',
    '-c', 'recovery_init_sync_method=syncfs', '-c', 'checkpoint_timeout=30s', '-c', 'max_wal_size=64MB', '-c', 'min_wal_size=32MB', '-c', 'authentication_timeout=3s', '-c', 'fsync=on',
  ]);
  assert.ok(postgresArgv({ ...o, settings: { checkpoint_timeout: '5min' } }).includes('checkpoint_timeout=5min'), 'settings override the defaults');
  assert.equal(spec.stopSignal, 'SIGINT');
  assert.equal(spec.stopTimeoutMs, 5000);
  assert.equal(typeof spec.health, 'function');
  assert.equal(typeof spec.prepare, 'function');
});

test('pg_hba is rendered from the options: peer locally, scram over TCP for the allowed networks only', () => {
  assert.equal(renderHba({ allowCidrs: ['10.0.0.0/24'] }).split('\n').filter((l) => !l.startsWith('#') && l).join('|'), 'local all ycluster-health scram-sha-256|local all all peer|host all all 127.0.0.1/32 scram-sha-256|host all all 10.0.0.0/24 scram-sha-256');
  assert.doesNotMatch(renderHba({}), /trust/);
});

test('programArgv unwraps setpriv and env(1) to what /proc shows', () => {
  assert.deepEqual(programArgv(asUser('u', ['/bin/x', '-a'])), ['/bin/x', '-a']);
  assert.deepEqual(programArgv({ command: 'setpriv', args: ['--reuid', 'u', '--', '/usr/bin/env', 'A=1', 'B=2', '/opt/q'] }), ['/opt/q']);
  assert.deepEqual(programArgv({ command: '/bin/y', args: ['1'] }), ['/bin/y', '1']);
});

test('passwdIds reads uid and gid of the named user only; a missing or broken line is undefined', () => {
  const text = 'root:x:0:0:root:/root:/bin/bash\npostgres:x:105:111:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\nbroken:x::7::/:/bin/false\n';
  assert.deepEqual(passwdIds(text, 'postgres'), { uid: 105, gid: 111 });
  assert.deepEqual(passwdIds(text, 'root'), { uid: 0, gid: 0 });
  assert.equal(passwdIds(text, 'post'), undefined);
  assert.equal(passwdIds(text, 'broken'), undefined);
});
