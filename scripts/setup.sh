#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine as root:
#   1. apt packages listed in scripts/apt-packages.txt (apt-get update first, only if any is missing)
#   2. the virtualenv .venv with rtkvm and its development dependencies
#   3. as root: libvirt's daemons and qemu.conf (`rtkvm runtime up`: users, directories,
#      quirks of this host detected and handled, virtlogd/libvirtd started; no systemd)
# Re-running it changes nothing when everything is in place.
# --no-runtime: only 1 and 2 (what `rtkvm host clean` needs; .ci/run cleans the host with it).
set -euo pipefail
runtime=1
case "${1:-}" in
  "") ;;
  --no-runtime) runtime=0 ;;
  *) echo "setup: unknown option $1 (use --no-runtime or nothing)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < scripts/apt-packages.txt
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages must not start their services (RabbitMQ, MariaDB, PostgreSQL on the host's
  # default ports): rtkvm starts private ones. Debian asks policy-rc.d; one that says "no"
  # is put in place for the install when the machine has none.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# rtkvm setup: no service starts from a package install\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv=${VENV:-.venv}
stamp="$venv/.rtkvm-setup-stamp"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating virtualenv $venv"
  python3 -m venv "$venv"
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "installing rtkvm and its dependencies into $venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
if ((runtime == 0)); then
  log "packages and virtualenv ready (--no-runtime: libvirt not started)"
  exit 0
fi
if [[ $EUID -eq 0 ]]; then
  "$venv/bin/rtkvm" runtime up
else
  log "not root: skipping 'rtkvm runtime up' (libvirt daemons); guests need it"
fi
log "ready"
