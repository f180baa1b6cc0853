#!/usr/bin/env node
// tsc copies no non-TS files; the dashboard page is served from dist.
import { cpSync, existsSync, mkdirSync } from 'node:fs';
mkdirSync('dist/web', { recursive: true });
if (existsSync('src/web/dashboard.html')) cpSync('src/web/dashboard.html', 'dist/web/dashboard.html');
