import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeFirstReply, startupMessage } from './pg-ping.js';

function errorReply(code: string): Buffer {
  const body = Buffer.from(`SFATAL\0C${code}\0Mwhatever\0\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

test('startupMessage: length, protocol 3.0, user and database', () => {
  const m = startupMessage('postgres', 'postgres');
  assert.equal(m.readInt32BE(0), m.length);
  assert.equal(m.readInt32BE(4), 196608);
  assert.equal(m.subarray(8).toString(), 'user\0postgres\0database\0postgres\0\0');
});

test('judgeFirstReply: an authentication request is ready', () => {
  const r = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 10]);
  assert.equal(judgeFirstReply(r), 'ready');
});

test('judgeFirstReply: "the database system is starting up" (57P03) rejects; any other error means it accepts', () => {
  assert.equal(judgeFirstReply(errorReply('57P03')), 'rejecting');
  assert.equal(judgeFirstReply(errorReply('28P01')), 'ready');
  assert.equal(judgeFirstReply(errorReply('28000')), 'ready');
});

test('judgeFirstReply: waits for a whole error message; a nonsense length is not ready', () => {
  const full = errorReply('57P03');
  assert.equal(judgeFirstReply(full.subarray(0, 3)), undefined);
  assert.equal(judgeFirstReply(full.subarray(0, full.length - 2)), undefined);
  const bad = Buffer.from([0x45, 0x7f, 0xff, 0xff, 0xff, 0]);
  assert.equal(judgeFirstReply(bad), 'rejecting');
});
