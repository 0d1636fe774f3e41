"""pretix's WSGI application on 127.0.0.1, with its static files, in a thread of this process."""

import errno
import threading
import urllib.error
import urllib.request

from .lifecycle import DemoError

HOST = '127.0.0.1'


def bind(port):
    """Claim the port before anything else starts, so a clash is reported first and plainly."""
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        # The confirm page polls every few seconds; an access log would drown the terminal.
        def log_message(self, format, *args):
            pass

    try:
        return ThreadedWSGIServer((HOST, port), QuietHandler, allow_reuse_address=True)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DemoError('port %d on %s is in use; stop the program listening there or pass --port with '
                            'a free port' % (port, HOST))
        raise DemoError('cannot listen on %s:%d: %s' % (HOST, port, exc.strerror))


class Server:
    def __init__(self, httpd):
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.core.wsgi import get_wsgi_application
        self.httpd = httpd
        # StaticFilesHandler serves /static/ (pretix's, the plugin's and the compiled stylesheets)
        # with DEBUG off, the way pytest-django's live server does.
        httpd.set_app(StaticFilesHandler(get_wsgi_application()))
        self.url = 'http://%s:%d' % (HOST, httpd.server_address[1])
        self.thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.2},
                                       name='pretix-server', daemon=True)

    def start(self):
        self.thread.start()
        return self

    def warm_up(self, *paths, timeout=300):
        """Request pages once before the URL is printed: the first request compiles pretix's
        stylesheets (tens of seconds on first use), so the organiser's first click is fast."""
        for path in paths:
            try:
                with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                raise DemoError('pretix answered %s with HTTP %d; see pretix.log' % (path, exc.code))
            except OSError as exc:
                raise DemoError('pretix did not answer %s: %s' % (path, exc))

    def stop(self):
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()
