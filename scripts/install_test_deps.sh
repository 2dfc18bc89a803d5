#!/bin/sh
# Installs Debian's Xvfb (desktop-window tests) and Chromium (browser tests) when missing.
# Without root or apt-get the tests that need them are skipped, each saying why (in CI they fail instead).
need=""
command -v xvfb-run >/dev/null 2>&1 || need="$need xvfb xauth"
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing$need (Debian packages for the desktop and browser tests)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
else
    echo "note: install$need (sudo apt-get install$need) to run the desktop and browser tests; they are skipped now (failed in CI)"
fi
exit 0
