"""hello-web: answers every GET with its version, so a deployment can be checked from outside."""

import http.server
import os
import pathlib
import sys

VERSION = (pathlib.Path(__file__).parent / "VERSION").read_text().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello-web version {VERSION} on {os.environ.get('INSTANCE', 'unknown')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
