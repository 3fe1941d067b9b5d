"""Schemathesis hooks: a real org secret and admin JWT on every request, and
sometimes a real ticket id, so fuzzing reaches past authentication."""
import os
import random

import schemathesis

SECRET = os.environ["FUZZ_ORG_SECRET"]
JWT = os.environ["FUZZ_JWT"]
TICKET = os.environ["FUZZ_TICKET_ID"]


@schemathesis.hook
def map_headers(ctx, headers):
    headers = dict(headers or {})
    # Replace whatever was generated: the other checks need to get past auth.
    headers["Authorization"] = f"Bearer {JWT}"
    headers["X-Api-Key"] = SECRET
    return headers


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if path_parameters and "id" in path_parameters and random.random() < 0.5:
        path_parameters = dict(path_parameters)
        path_parameters["id"] = TICKET
    return path_parameters
