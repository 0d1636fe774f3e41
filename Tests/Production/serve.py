"""One pretix web worker process: python serve.py PORT

A threaded stdlib WSGI server around pretix's WSGI application, bound to 127.0.0.1. The
production suite starts several of these (like gunicorn workers behind a proxy) so that
concurrent deliveries really run in separate processes with separate database connections.
Prints "ready" once it accepts connections; stops on SIGTERM.
"""

import os
import signal
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import django


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1])
    django.setup()
    from django.core.wsgi import get_wsgi_application

    httpd = make_server('127.0.0.1', port, get_wsgi_application(), ThreadingWSGIServer, QuietHandler)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=httpd.shutdown, daemon=True).start())
    print('ready', flush=True)
    httpd.serve_forever(poll_interval=0.1)
    httpd.server_close()
    # Skip interpreter shutdown: it waits for threads of pretix's inline task machinery and
    # took seconds per worker; there is nothing left to flush.
    os._exit(0)


if __name__ == '__main__':
    main()
