"""Example function: a plain http.server answering {"message": "Hello, <name>"}."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            data = {}
        name = data.get("name", "World") if isinstance(data, dict) else "World"
        self.reply(200, {"message": f"Hello, {name}"})

    def do_GET(self):
        self.reply(200, {"message": "Hello, World"})

    def reply(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"greet listening on {port}")
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
