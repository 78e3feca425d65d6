#!/usr/bin/env bash
# Check that every Debian package the Raspberry Pi steps of README.md install exists in Debian bookworm for arm64
# (Raspberry Pi OS bookworm is Debian bookworm plus the Raspberry Pi archive, which is not reachable from here).
# Uses this machine's Debian sources with a private apt state folder and architecture arm64: the system's own apt
# state is not touched. Prints each package's arm64 candidate version; exit 1 if one has none.
#
#   deploy/gateway/check-bookworm-packages.sh [PACKAGE...]
set -euo pipefail
packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
  # kept in step with README.md, "Raspberry Pi OS (bookworm)"
  packages=(python3 python3-venv bluez dbus git openssl ca-certificates mosquitto-clients systemd-timesyncd rfkill)
fi
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
touch "$state/status"
opts=(-o "APT::Architecture=arm64" -o "APT::Architectures::=arm64" -o "Dir::State::Lists=$state/lists"
      -o "Dir::State::status=$state/status" -o "Dir::Cache=$state/cache" -o "Debug::NoLocking=1"
      -o "APT::Sandbox::User=root")
apt-get "${opts[@]}" -qq update
missing=0
for pkg in "${packages[@]}"; do
  candidate="$(apt-cache "${opts[@]}" policy "$pkg:arm64" 2>/dev/null | awk '/Candidate:/ {print $2}')"
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    echo "MISSING  $pkg (arm64)"; missing=1
  else
    echo "ok       $pkg:arm64 $candidate"
  fi
done
exit $missing
