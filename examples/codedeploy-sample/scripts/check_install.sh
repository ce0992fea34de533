#!/bin/sh
# AfterInstall: the files are where the appspec put them, with its permissions.
set -eu
p="${DEPLOY_INSTALL_PREFIX:-}"
test -f "$p/var/www/html/index.html"
test -x "$p/opt/sample-app/bin/run.sh"
test "$(stat -c %a "$p/etc/sample-app/app.properties")" = 640
echo "install checked"
