#!/usr/bin/env bash
# The slow-client tests (tests/test_reliability_proxy.py) start Debian's nginx in front of gunicorn,
# as deploy/nginx.conf documents for production. Install it from Debian's packages when it is missing.
# (The tests run their own nginx on loopback ports with a private prefix; on a machine with systemd the
# package also starts Debian's default site on port 80 — `systemctl disable --now nginx` if unwanted.)
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq nginx >/dev/null
command -v nginx || ls /usr/sbin/nginx
