#!/usr/bin/env bash
# Baselines for bench/: perfdhcp (kea-admin), Kea, dnsmasq and dnsperf. Not needed by the tests.
set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kea-admin kea-dhcp4-server dnsmasq-base dnsperf
