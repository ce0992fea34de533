#!/bin/sh
# AfterInstall: record what was installed.
set -eu
. "$(dirname "$0")/common.sh"
test -f "$APP_DIR/server.py"
echo "$DEPLOYMENT_ID $(cat "$APP_DIR/VERSION")" > "$STATE_DIR/installed"
echo "installed version $(cat "$APP_DIR/VERSION") into $APP_DIR"
