#!/bin/sh
# ApplicationStop: stop the running hello-web, if any (runs from the previous revision).
set -eu
. "$(dirname "$0")/common.sh"
if [ -f "$PID_FILE" ]; then
    pid=$(cat "$PID_FILE")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    rm -f "$PID_FILE"
    echo "stopped hello-web (pid $pid)"
else
    echo "hello-web was not running"
fi
