#!/usr/bin/env node
// Runs one test tier with node's test runner (through tsx). Usage: run-tests.mjs unit|integration|lab [filter]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const tier = process.argv[2];
const filter = process.argv[3] ?? '';
const roots = { unit: ['src'], integration: ['test/integration'], lab: ['test/lab'] };
// Lab tests share the machine's namespaces and CPU: one file at a time.
const concurrency = { unit: 2, integration: 1, lab: 1 };
// A hung test fails on its own instead of eating CI's whole time limit.
const timeoutMs = { unit: 60_000, integration: 240_000, lab: 600_000 };
if (!roots[tier]) {
  console.error(`unknown tier "${tier}": use unit, integration or lab`);
  process.exit(2);
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (name.endsWith('.test.ts') && path.includes(filter)) out.push(path);
  }
  return out;
}

const files = roots[tier].flatMap(walk).sort();
if (files.length === 0) {
  console.error(`no ${tier} tests found${filter ? ` matching "${filter}"` : ''}`);
  process.exit(1);
}
const result = spawnSync(process.execPath, [
  '--import', 'tsx', '--test', `--test-concurrency=${concurrency[tier]}`, `--test-timeout=${timeoutMs[tier]}`, '--test-force-exit', '--test-reporter=spec', ...files,
], { stdio: 'inherit', env: { ...process.env, YCLUSTER_TEST_TIER: tier } });
process.exit(result.status ?? 1);
