"""moto_server, one request at a time.

moto_server is threaded and moto takes no locks, so two concurrent conditional
writes can both pass their condition, which real DynamoDB never allows. Serving
requests one at a time restores that atomicity for the race tests (moto is
bound by the GIL anyway, so little throughput is lost).

usage: python scripts/moto_serial.py HOST PORT
"""
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, run_simple

# Waiting connections queue instead of being refused while one is served.
BaseWSGIServer.request_queue_size = 4096


class OneShotHandler(MotoRequestHandler):
    # HTTP/1.0: close after each response, so an idle keep-alive connection
    # never holds the single-threaded server.
    protocol_version = "HTTP/1.0"


if __name__ == "__main__":
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(sys.argv[1], int(sys.argv[2]), app, threaded=False, request_handler=OneShotHandler)
