import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from './metrics.js';

test('renders counters and gauges in the Prometheus text format', () => {
  const m = new Metrics();
  m.inc('yc_drops_total', 'dropped packets', { reason: 'short' });
  m.inc('yc_drops_total', 'dropped packets', { reason: 'short' }, 2);
  m.set('yc_up', 'up', 1);
  const text = m.render();
  assert.match(text, /# TYPE yc_drops_total counter\nyc_drops_total\{reason="short"\} 3\n/);
  assert.match(text, /yc_up 1\n/);
});
