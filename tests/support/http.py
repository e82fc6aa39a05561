"""Servers on 127.0.0.1 in tests: an ASGI app run by uvicorn in a thread, and JSON calls to it."""

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request

from faqforge.answering.serve import bind


@contextlib.contextmanager
def running(app):
    """uvicorn serving `app` in a thread on a free 127.0.0.1 port; yields the /v1 URL."""
    import uvicorn
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


def call(url, path, body=None):
    """(status, JSON body) of a GET, or of a JSON POST when `body` is given, to a server on 127.0.0.1."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
