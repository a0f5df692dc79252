#!/usr/bin/env bash
# Run a command with pcscd available.
#
#   scripts/with-pcscd.sh CMD [ARGS...]
#
# If no pcscd answers on /run/pcscd/pcscd.comm, start `pcscd --foreground` in the background
# (needs root: it creates /run/pcscd), wait until its socket answers, run CMD, then stop the
# pcscd started here — never one that was already running. Exits with CMD's status.
set -uo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

SOCK=/run/pcscd/pcscd.comm
TIMEOUT_S=${PCSCD_START_TIMEOUT:-10}

sock_answers() {
    # the socket file alone may be stale: a listener must accept a connection
    [ -S "$SOCK" ] || return 1
    python3 - "$SOCK" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(2)
s.connect(sys.argv[1])
s.close()
PY
}

PCSCD_PID=""
PCSCD_LOG=""

pid_alive() {  # a zombie (killed, not yet reaped) counts as gone
    local state
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)
    [ "$state" != Z ]
}

clear_stale() {
    # pcscd refuses to start while its pid file names a live-looking process; when the socket
    # does not answer and that process is gone, the files are leftovers of a killed pcscd
    local pidfile=/run/pcscd/pcscd.pid pid
    [ -e "$pidfile" ] || [ -e "$SOCK" ] || return 0
    pid=$(tr -dc '0-9' <"$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && pid_alive "$pid"; then
        return 0
    fi
    echo "with-pcscd: removing stale $SOCK (pcscd ${pid:+pid $pid }is gone)" >&2
    rm -f "$SOCK" "$pidfile"
}

stop_pcscd() {
    if [ -z "$PCSCD_PID" ]; then
        [ -n "$PCSCD_LOG" ] && rm -f "$PCSCD_LOG"
        return 0
    fi
    if kill -0 "$PCSCD_PID" 2>/dev/null; then
        kill -TERM "$PCSCD_PID" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$PCSCD_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -0 "$PCSCD_PID" 2>/dev/null && kill -KILL "$PCSCD_PID" 2>/dev/null
    fi
    wait "$PCSCD_PID" 2>/dev/null
    PCSCD_PID=""
    [ -n "$PCSCD_LOG" ] && rm -f "$PCSCD_LOG"
}

if sock_answers; then
    echo "with-pcscd: using the pcscd already running" >&2
else
    PCSCD=$(command -v pcscd || true)
    [ -z "$PCSCD" ] && [ -x /usr/sbin/pcscd ] && PCSCD=/usr/sbin/pcscd
    if [ -z "$PCSCD" ]; then
        echo "with-pcscd: pcscd is not installed (apt-get install pcscd vsmartcard-vpcd," \
             "or run scripts/setup.sh as root)" >&2
        exit 127
    fi
    PCSCD_LOG=$(mktemp "${TMPDIR:-/tmp}/pcscd.XXXXXX")
    trap stop_pcscd EXIT
    trap 'stop_pcscd; exit 130' INT
    trap 'stop_pcscd; exit 143' TERM
    # two attempts: a pcscd killed a moment ago leaves its pid file, and the new one refuses
    # to start ("Another pcscd seems to be running") until the old process is reaped
    for attempt in 1 2; do
        clear_stale
        "$PCSCD" --foreground >"$PCSCD_LOG" 2>&1 &
        PCSCD_PID=$!
        deadline=$((SECONDS + TIMEOUT_S))
        until sock_answers; do
            if ! kill -0 "$PCSCD_PID" 2>/dev/null; then
                wait "$PCSCD_PID" 2>/dev/null
                PCSCD_PID=""
                break
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                echo "with-pcscd: pcscd did not answer on $SOCK within ${TIMEOUT_S}s:" >&2
                cat "$PCSCD_LOG" >&2
                exit 1
            fi
            sleep 0.05
        done
        [ -n "$PCSCD_PID" ] && break
        if [ "$attempt" = 2 ]; then
            not_root=""
            [ "$(id -u)" != 0 ] && not_root=" (not root: it must create /run/pcscd)"
            echo "with-pcscd: pcscd exited right after starting${not_root}:" >&2
            cat "$PCSCD_LOG" >&2
            exit 1
        fi
        sleep 1
    done
    echo "with-pcscd: started pcscd (pid $PCSCD_PID)" >&2
fi

"$@"
rc=$?
stop_pcscd
exit "$rc"
