#!/bin/sh
# BeforeInstall: make sure the state directory exists and note which deployment is coming.
set -eu
. "$(dirname "$0")/common.sh"
mkdir -p "$STATE_DIR"
echo "$DEPLOYMENT_ID" > "$STATE_DIR/before-install"
echo "preparing $APPLICATION_NAME for deployment $DEPLOYMENT_ID ($LIFECYCLE_EVENT)"
