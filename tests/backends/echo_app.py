"""Test backend for uringd's reverse proxy: one WSGI app served by gunicorn and by uWSGI.

Standard library only. Started by tests/common/backend.rs, which sets ECHO_SERVER to
"gunicorn" or "uwsgi" (and PYTHONDONTWRITEBYTECODE, so no __pycache__ lands in the tree).

Routes (on PATH_INFO):
  /health           200 "ok"
  /status/<code>    that status (200..599) with a short body; no body for 204 and 304
  /big/<n>          n bytes of "abcdefghij..." in 64 KiB chunks, no Content-Length
  /big-cl/<n>       the same with Content-Length
  /slow/<ms>        sleeps ms, then 200 "slow"
  /headers-out      200 with X-Backend: yes, Set-Cookie: a=1, Set-Cookie: b=2
  /echo-body        200, body = the request body as received
  anything else     200 JSON describing the request (see describe())
HEAD gets the same status and headers with no body, whichever server runs the app.
"""

import hashlib
import json
import os
import time
from http import HTTPStatus

CHUNK = 64 * 1024
PATTERN = b"abcdefghij"
# Long enough to slice any CHUNK-sized window out of it at any phase of the pattern.
_TILE = PATTERN * (CHUNK // len(PATTERN) + 2)


def read_body(environ):
    """The whole request body; wsgi.input ends it at Content-Length or the last chunk."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    parts = []
    while True:
        part = stream.read(CHUNK)
        if not part:
            break
        parts.append(part)
    return b"".join(parts)


def describe(environ, body):
    headers = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if k in environ:
            headers[k] = environ[k]
    return {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "query": environ.get("QUERY_STRING"),
        "uri": environ.get("REQUEST_URI"),
        "raw_uri": environ.get("RAW_URI"),
        "script_name": environ.get("SCRIPT_NAME"),
        "protocol": environ.get("SERVER_PROTOCOL"),
        "scheme": environ.get("wsgi.url_scheme"),
        "headers": headers,
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "server": os.environ.get("ECHO_SERVER", "unknown"),
        "environ_uwsgi": sorted(k for k in environ if k.startswith("UWSGI_")),
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
    }


def status_line(code):
    try:
        return "%d %s" % (code, HTTPStatus(code).phrase)
    except ValueError:
        return "%d Status %d" % (code, code)


def pattern_chunks(n):
    sent = 0
    while sent < n:
        size = min(CHUNK, n - sent)
        phase = sent % len(PATTERN)
        yield _TILE[phase : phase + size]
        sent += size


def int_tail(path, prefix):
    """The integer after prefix in path, or None."""
    tail = path[len(prefix) :]
    return int(tail) if tail.isdigit() else None


def app(environ, start_response):
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "") or "/"
    body = read_body(environ)  # always drain, so keep-alive framing stays right
    head = method == "HEAD"

    def reply(code, headers, payload):
        start_response(status_line(code), headers)
        return [] if head else payload

    def text(code, data, extra=(), ctype="text/plain"):
        data = data.encode() if isinstance(data, str) else data
        hdrs = [("Content-Type", ctype), ("Content-Length", str(len(data)))]
        return reply(code, hdrs + list(extra), [data])

    if path == "/health":
        return text(200, "ok")

    if path.startswith("/status/"):
        code = int_tail(path, "/status/")
        if code is None or not 200 <= code <= 599:
            return text(400, "bad status code\n")
        if code in (204, 304):
            return reply(code, [], [])
        return text(code, "status %d\n" % code)

    if path.startswith("/big/") or path.startswith("/big-cl/"):
        with_cl = path.startswith("/big-cl/")
        n = int_tail(path, "/big-cl/" if with_cl else "/big/")
        if n is None:
            return text(400, "bad size\n")
        hdrs = [("Content-Type", "application/octet-stream")]
        if with_cl:
            hdrs.append(("Content-Length", str(n)))
        return reply(200, hdrs, pattern_chunks(n))

    if path.startswith("/slow/"):
        ms = int_tail(path, "/slow/")
        if ms is None:
            return text(400, "bad delay\n")
        time.sleep(ms / 1000.0)
        return text(200, "slow")

    if path == "/headers-out":
        cookies = [("X-Backend", "yes"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
        return text(200, "headers-out\n", cookies)

    if path == "/echo-body":
        return text(200, body, ctype="application/octet-stream")

    data = json.dumps(describe(environ, body), sort_keys=True).encode()
    hdrs = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    return reply(200, hdrs, [data])


# uWSGI's default callable name.
application = app
