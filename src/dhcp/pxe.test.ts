import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideBoot, type BootClientInfo } from './pxe.js';

const cfg = { tftpServer: '10.0.0.5', bootHost: 'boot.lan', bootPort: 8081 };
const c = (x: Partial<BootClientInfo>): BootClientInfo => ({ mac: 'aa:bb:cc:dd:ee:ff', userClasses: [], hasIpxeOption: false, ...x });

test('architecture picks the TFTP boot file', () => {
  assert.deepEqual(decideBoot(c({ arch: 0 }), cfg), { kind: 'tftp', nextServer: '10.0.0.5', file: 'undionly.kpxe' });
  assert.deepEqual(decideBoot(c({ arch: 7 }), cfg), { kind: 'tftp', nextServer: '10.0.0.5', file: 'ipxe.efi' });
  assert.deepEqual(decideBoot(c({ arch: 9 }), cfg), { kind: 'tftp', nextServer: '10.0.0.5', file: 'ipxe.efi' });
  assert.deepEqual(decideBoot(c({ vendorClass: 'PXEClient:Arch:00000' }), cfg), { kind: 'tftp', nextServer: '10.0.0.5', file: 'undionly.kpxe' });
  assert.deepEqual(decideBoot(c({ arch: 11 }), cfg), { kind: 'none', reason: 'unsupported client architecture 11' });
});

test('plain clients get no boot decision', () => {
  assert.equal(decideBoot(c({ vendorClass: 'udhcp 1.35.0' }), cfg).kind, 'none');
});

test('iPXE (user class or option 175) gets its script URL whatever the architecture', () => {
  const url = 'http://boot.lan:8081/boot.ipxe?mac=aa:bb:cc:dd:ee:ff';
  assert.deepEqual(decideBoot(c({ arch: 7, userClasses: ['iPXE'] }), cfg), { kind: 'ipxe-script', nextServer: '10.0.0.5', file: url });
  assert.deepEqual(decideBoot(c({ hasIpxeOption: true }), cfg), { kind: 'ipxe-script', nextServer: '10.0.0.5', file: url });
});
