#!/bin/sh
# Install the Debian packages named as arguments, if any is missing.
# As root: apt-get update once, then apt-get install. Otherwise: say what to install.
# A name counts as installed when a package of that name is, or an installed package
# provides it (Ubuntu 24.04's libglib2.0-0t64 provides libglib2.0-0).
provided=$(dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' 2>/dev/null \
    | awk -F'|' '$1 ~ /^ii/ { n = split($2, p, ","); for (i = 1; i <= n; i++) {
          sub(/^ +/, "", p[i]); sub(/ .*/, "", p[i]); if (p[i] != "") print p[i] } }')
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    printf '%s\n' "$provided" | grep -qxF "$p" && continue
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "liveframe: missing system packages:$missing (install them with your package manager)" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "liveframe: missing Debian packages:$missing" >&2
    echo "  install them with: sudo apt-get install$missing" >&2
    exit 1
fi
echo "liveframe: installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || exit 1
apt-get install -y -q --no-install-recommends $missing >/dev/null || exit 1
