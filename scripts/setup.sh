#!/usr/bin/env bash
# Prepare this machine to run the suite: Debian packages (PC/SC bench, report toolchain), a
# virtual environment in .venv, and the package installed there in editable mode.
#
# Run as root on Debian 12 (or with sudo available). Idempotent: when everything is already
# installed it only checks, so re-running it is fast.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# pcscd + vpcd: the PC/SC bench; swig + gcc + libpcsclite-dev + python3-dev: pip builds pyscard
# (no Linux wheel); xmlsec1: verifies signed reports; fonts-wqy-microhei: Chinese in PDFs;
# poppler-utils: pdftotext in report tests; libpango*: WeasyPrint (libharfbuzz-subset0 is
# optional, fontTools subsets fonts without it); fonts-babelstone-han: the rare characters of
# cardholders' names beyond WenQuanYi (CJK Ext-B, e.g. 𠮷) in the quality report, by fallback.
PACKAGES=(
    pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools
    swig gcc python3-dev python3-venv
    xmlsec1 fonts-wqy-microhei fonts-babelstone-han poppler-utils
    libpango-1.0-0 libpangoft2-1.0-0 fontconfig libharfbuzz-subset0
)

say() { printf 'setup: %s\n' "$*" >&2; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null; then
            SUDO=(sudo)
        else
            say "missing packages: ${missing[*]}; run this script as root"
            exit 1
        fi
    fi
    say "installing ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "Debian packages already installed"
fi

# More virtual readers for runs on several readers (rhc run --workers N): the package's
# /etc/reader.conf.d/vpcd serves CHANNELID 0x8C7B (ports 35963-35964: "Virtual PCD 00 00/01");
# each further entry serves the next two ports from its own CHANNELID (0x8C7D: 35965-35966 →
# "Virtual PCD 2 00 00/01"), RHC_VPCD_READERS (default 4) readers in all. vpcd keeps its slots
# in static state, shared by every entry that loads the same library file, so each entry gets
# its own copy of the driver (libifdvpcd-rhc<port>.so). pcscd reads the entries when it starts.
VPCD_CONF=/etc/reader.conf.d/vpcd-rhc
VPCD_LIB=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
vpcd_ports() { seq 35965 2 $((35963 + ${RHC_VPCD_READERS:-4} - 1)); }
vpcd_entries() {
    local port
    for port in $(vpcd_ports); do
        printf 'FRIENDLYNAME "Virtual PCD %d"\nDEVICENAME   /dev/null:0x%X\n' "$((port - 35963))" "$port"
        printf 'LIBPATH      %s\nCHANNELID    0x%X\n\n' "${VPCD_LIB%.so}-rhc$port.so" "$port"
    done
}
if [ ! -w /etc/reader.conf.d ] || [ ! -e "$VPCD_LIB" ]; then
    say "cannot add vpcd readers (not root, or no $VPCD_LIB): only the package's two"
elif [ -z "$(vpcd_entries)" ]; then
    rm -f "$VPCD_CONF"
else
    for port in $(vpcd_ports); do
        cmp -s "$VPCD_LIB" "${VPCD_LIB%.so}-rhc$port.so" || cp "$VPCD_LIB" "${VPCD_LIB%.so}-rhc$port.so"
    done
    if [ "$(vpcd_entries)" != "$(cat "$VPCD_CONF" 2>/dev/null)" ]; then
        vpcd_entries >"$VPCD_CONF"
        say "vpcd readers: ${RHC_VPCD_READERS:-4} (ports 35963 and up), entries in $VPCD_CONF"
    fi
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "$PYTHON is $("$PYTHON" -V 2>&1 || echo missing); Python >= 3.11 is required (set PYTHON=...)"
    exit 1
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "creating .venv with $("$PYTHON" -V 2>&1)"
    rm -rf .venv
    "$PYTHON" -m venv .venv
fi

# reinstall only when the project metadata changed since the last successful install
stamp=.venv/.rhc-setup-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && .venv/bin/python -c 'import conformance, smartcard' 2>/dev/null \
        && [ -x .venv/bin/rhc ] && [ -x .venv/bin/ruff ] && [ -x .venv/bin/pytest ]; then
    say ".venv is up to date"
else
    say "installing the package into .venv (pip install -e '.[dev]')"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$want" >"$stamp"
fi
say "ready: .venv/bin/rhc, .venv/bin/pytest (scripts/with-pcscd.sh starts pcscd when needed)"
