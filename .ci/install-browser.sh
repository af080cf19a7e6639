#!/bin/sh
# Install what the browser tests (pytest -m browser) need: Debian's chromium, when absent.
# Playwright drives it from /usr/bin/chromium; no browser is downloaded.
# Needs root (CI containers run as root). The Python side, the `playwright` package, comes
# with the project's test extra: pip install -e '.[test]'.
set -eu
if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
