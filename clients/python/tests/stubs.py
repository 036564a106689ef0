"""Small plain-http servers on 127.0.0.1 put in front of the real
servers, for what the fixture cannot make happen on demand: a 503, a 307,
a request dropped after it arrived, a call that hangs."""
import http.server
import threading


class Stub:
    """An http server on 127.0.0.1 that answers every request with
    `reply(handler)`, counting the requests."""

    def __init__(self, reply):
        stub = self
        self.count = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_any(self):
                stub.count += 1
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                reply(self)

            do_GET = do_POST = do_any

            def log_message(self, *args):
                pass

        self.release = threading.Event()  # ends a handler that waits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def answer(status, headers=(), body=b'{"error":"stub","code":"unavailable"}'):
    def reply(h):
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return reply


def drop(h):
    """Read the request, answer nothing: it may have been acted on."""
    h.close_connection = True
