#!/bin/sh
# Every hook: note which event of which deployment ran, so the order can be checked.
set -eu
log_dir="${DEPLOY_INSTALL_PREFIX:-}/var/log/sample-app"
mkdir -p "$log_dir"
echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID" >> "$log_dir/hooks.log"
