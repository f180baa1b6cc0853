#!/usr/bin/env bash
# The README's first command: installs what is needed, builds, and brings up a lab cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "lab-up: run as root (network namespaces)" >&2; exit 1; fi
bash scripts/install-deps.sh
npm run -s build
exec node dist/main.js lab up "$@"
