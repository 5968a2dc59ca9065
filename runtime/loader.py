"""lowcode-faas stem cell loader for Python.

Started in a function container before any function needs it, it waits on PORT for the platform to
hand it one function (POST /__lowcode_faas/load with the key the platform started it with), closes its
listener so that the function's own server can bind PORT, and runs the function's source as __main__
in this same process: the modules below are already imported, which is the time a cold start saves.
It serves exactly one handoff in its life, and prints nothing of the source or the environment.
"""
import builtins
import linecache
import os
import sys
import types

# What a function commonly imports, loaded while nobody waits (a module imported twice costs nothing).
import base64, collections, datetime, email.utils, functools, hashlib, http, http.client, http.server  # noqa: E401,F401
import io, json, math, random, re, socket, socketserver, string, threading, time, traceback  # noqa: E401,F401
import typing, urllib.parse, uuid  # noqa: E401,F401

LOAD_PATH = "/__lowcode_faas/load"
MAX_BODY = 16 * 1024 * 1024
# The key proves the platform sent the handoff; the function never sees it in os.environ.
KEY = os.environ.pop("LOWCODE_FAAS_STEM_KEY", "")
job = None


class Loader(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, text=b""):
        self.send_response(status)
        # Tells the platform a loader answered, not a function (a function's address may be given again).
        self.send_header("X-Lowcode-Faas-Stem", "1")
        self.send_header("Content-Length", str(len(text)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(text)

    def do_GET(self):
        # The platform's readiness probe of the stem cell itself.
        self.answer(204)

    def do_POST(self):
        global job
        if self.path != LOAD_PATH:
            return self.answer(404)
        if job is not None or not KEY or self.headers.get("X-Lowcode-Faas-Key") != KEY:
            return self.answer(403)
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            return self.answer(413)
        try:
            data = json.loads(self.rfile.read(length))
            file, env = data["file"], data["env"]
            data["source"] = base64.b64decode(data["source_base64"], validate=True)
            if not isinstance(file, str) or "/" in file or not isinstance(env, dict):
                raise ValueError("bad handoff")
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
                raise ValueError("bad env")
        except Exception:
            return self.answer(400)
        job = data
        # The port is free before the platform hears "200": its next probe can only reach the function.
        self.server.socket.close()
        self.answer(200)


def run(job):
    filename = "/app/" + job["file"]
    source = job["source"]
    port = os.environ.get("PORT", "")
    # The function's own variables, then the platform's PORT, as `docker run` would set them.
    os.environ.update(job["env"])
    if port:
        os.environ["PORT"] = port
    sys.argv[:] = [filename]
    sys.path[0] = "/app"
    module = types.ModuleType("__main__")
    module.__file__ = filename
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    # Tracebacks quote the function's lines although no file holds them.
    lines = source.decode("utf-8", "replace").splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    try:
        # Bytes, as from the file: Python reads its encoding (UTF-8, or the file's coding line).
        code = compile(source, filename, "exec")
        exec(code, module.__dict__)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as err:
        # The function's traceback without the loader's frame, then the exit a crashed script has.
        tb = err.__traceback__.tb_next if err.__traceback__ is not None else None
        traceback.print_exception(type(err), err, tb)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def main():
    server = http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Loader)
    while job is None:
        server.handle_request()
    server.server_close()
    run(job)


if __name__ == "__main__":
    main()
