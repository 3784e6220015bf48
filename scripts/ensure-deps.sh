#!/usr/bin/env bash
# Set-up that `npm start` and `npm test` do by themselves on a fresh machine:
# node modules from the lock file, (with --redis) the redis-server the cluster tests start, and
# (with --browser) the Chromium the console's end-to-end tests drive (Debian's package: the tests
# never download a browser).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing node modules (npm ci)"
  npm ci --no-audit --no-fund
fi

# apt_install <command> <package> <why>: installs the Debian package when the command is missing.
apt_install() {
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $2 (Debian package) for $3"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "$2" >/dev/null
  else
    echo "$3 need $1: install it (Debian/Ubuntu: sudo apt-get install $2)" >&2
    exit 1
  fi
}

for arg in "$@"; do
  case "$arg" in
    --redis) apt_install redis-server redis-server "the cluster tests" ;;
    --browser) [ -n "${CHROMIUM_PATH:-}" ] || apt_install chromium chromium "the console's end-to-end tests" ;;
    --ss) apt_install ss iproute2 "the LISTEN_BACKLOG test" ;;
  esac
done
