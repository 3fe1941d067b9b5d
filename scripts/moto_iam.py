"""moto_server enforcing IAM, one request at a time, for functions/tests/iam.rs.

Started with every request unchecked; `POST /moto-api/reset-auth` with body
`0` (what INITIAL_NO_AUTH_ACTION_COUNT sets at start) then makes every request
signed by a moto IAM identity and checked against its policies.

One fix to moto 5.2.5's signature check: for a GET or DELETE without a body
(EventBridge Scheduler's REST calls) it signs the request's parsed parameters
as if they were the body, so every correctly signed one fails with
SignatureDoesNotMatch. Here such a request's body is signed as empty, as AWS
does.
Requests are served one at a time, as scripts/moto_serial.py explains.

usage: python scripts/moto_iam.py HOST PORT
"""
import sys

from botocore.awsrequest import AWSRequest
from moto.iam.access_control import IAMRequestBase
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, run_simple


def _create_aws_request(self):
    signed_headers = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
    headers = self._create_headers_for_aws_request(signed_headers, self._headers)
    # A form POST's body reaches moto parsed (self._data); a GET or DELETE has none.
    bodiless = self._method in ("GET", "DELETE", "HEAD")
    data = self._body or (b"" if bodiless else self._data)
    request = AWSRequest(method=self._method, url=self._path, data=data, headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    return request


IAMRequestBase._create_aws_request = _create_aws_request
BaseWSGIServer.request_queue_size = 4096


class OneShotHandler(MotoRequestHandler):
    protocol_version = "HTTP/1.0"


if __name__ == "__main__":
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(sys.argv[1], int(sys.argv[2]), app, threaded=False, request_handler=OneShotHandler)
