#!/usr/bin/env bash
# Installs the Debian packages that `make test` and `make demo` start by themselves, only when missing.
# Idempotent: a machine that already has them does nothing.
set -euo pipefail
need=()
# command-or-file : debian-package
for pair in ${GAITSYM_SYSTEM_DEPS:-}; do
  probe=${pair%%:*}; pkg=${pair##*:}
  if ! command -v "$probe" >/dev/null 2>&1 && [ ! -e "$probe" ]; then need+=("$pkg"); fi
done
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing Debian packages: ${need[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
