#!/usr/bin/env bash
# Ensure Debian's headless Chromium and its driver (for the catalog page tests): installs the
# `chromium` and `chromium-driver` packages when /usr/bin/chromium or /usr/bin/chromedriver is
# missing (root; apt-get update first). Never downloads a browser from anywhere else.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  /usr/bin/chromium --version >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure_chromium: chromium is missing; run as root: apt-get install -y chromium chromium-driver" >&2
  exit 1
fi
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >&2
/usr/bin/chromium --version >&2
