"""A local webhook receiver: an HTTP server that records the JSON it is POSTed (the monitor's tests and
``benchmarks/bench_serve.py``)."""

from __future__ import annotations

import threading
import time


class Receiver:
    """A local HTTP server that records JSON POSTs and answers ``fail_first`` of them with 503."""

    def __init__(self, fail_first: int = 0):
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[dict] = []
        self.times: list[float] = []  # when each of them arrived
        self.attempts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.attempts += 1
                if outer.attempts <= fail_first:
                    self.send_response(503)
                else:
                    outer.received.append(json.loads(body))
                    outer.times.append(time.time())
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
