# Shared by the hooks: where hello-web is installed and keeps its state on this host.
APP_DIR="${DEPLOY_INSTALL_PREFIX}/opt/hello-web"
STATE_DIR="${DEPLOY_INSTALL_PREFIX}/var/lib/hello-web"
PID_FILE="$STATE_DIR/server.pid"
