#!/usr/bin/env bash
# The README's test command: installs dependencies, then build, typecheck, lint and every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
step() { echo; echo "==> $*"; }
step build;        npm run -s build
step typecheck;    npm run -s typecheck
step lint;         npm run -s lint
step "unit tests";        node scripts/run-tests.mjs unit
step "integration tests"; node scripts/run-tests.mjs integration
step "lab tests";         node scripts/run-tests.mjs lab
echo; echo "==> all tiers passed"
