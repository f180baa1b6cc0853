#!/usr/bin/env bash
# Installs what ycluster's lab and tests need, idempotently: Debian packages, then npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each package is used by the code or tests named beside it.
DEBIAN_PACKAGES=(
  etcd-server etcd-client   # cluster state (every tier above unit)
  iproute2 iptables procps psmisc util-linux   # lab namespaces, bridges, process control
  busybox isc-dhcp-client dhcpcd-base   # real DHCP clients in lab tests
  tftp-hpa dnsutils curl   # TFTP, dig and HTTP clients in lab tests
  ipxe   # undionly.kpxe / ipxe.efi served over TFTP
  qemu-system-x86 ipxe-qemu ovmf   # real firmware (SeaBIOS + iPXE ROM, OVMF for UEFI) PXE-boots from the lab in test/lab/firmware-boot
  keepalived   # gateway VIP
  openssl   # certificates in the etcd TLS test
  postgresql-15 docker-registry   # stateful services run by the storage leader
  iputils-arping xfsprogs   # gratuitous ARP for VIPs; volume file systems
  ceph-mon ceph-mgr ceph-osd ceph-common rbd-fuse   # RBD volumes (plain Ceph stands in for MicroCeph)
  python3-rados python3-rbd   # the agent's long-lived Ceph client (libexec/ycluster-rados.py)
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  for attempt in 1 2 3; do
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
      break
    fi
    [ "$attempt" = 3 ] && { echo "install-deps: apt-get failed" >&2; exit 1; }
    sleep 5
  done
else
  echo "install-deps: Debian packages present"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  echo "install-deps: node_modules up to date"
fi
