#!/bin/sh
# ValidateService: hello-web must answer on APP_PORT with the version just installed.
set -eu
. "$(dirname "$0")/common.sh"
want="version $(cat "$APP_DIR/VERSION")"
exec python3 - "$APP_PORT" "$want" <<'PY'
import sys, time, urllib.request
port, want = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 20
while True:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
        if want in body:
            print(f"ok: {body.strip()}")
            sys.exit(0)
        print(f"unexpected answer: {body.strip()}")
        sys.exit(1)
    except OSError as exc:
        if time.monotonic() > deadline:
            print(f"hello-web does not answer on port {port}: {exc}")
            sys.exit(1)
        time.sleep(0.05)
PY
