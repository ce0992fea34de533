#!/bin/sh
# ApplicationStart: start hello-web on APP_PORT, detached from the hook (its own session, no
# inherited stdout/stderr, so the agent sees the hook finish at once).
set -eu
. "$(dirname "$0")/common.sh"
: "${APP_PORT:?APP_PORT must be set in the agent environment}"
mkdir -p "$STATE_DIR"
INSTANCE="${INSTANCE:-$(hostname)}" setsid python3 "$APP_DIR/server.py" "$APP_PORT" \
    </dev/null >>"$STATE_DIR/server.log" 2>&1 &
echo $! > "$PID_FILE"
echo "started hello-web on port $APP_PORT (pid $!)"
