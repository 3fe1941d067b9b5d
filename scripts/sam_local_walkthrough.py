"""The README walkthrough, driven through `sam local` (scripts/test-sam-local).

Every request goes to `sam local start-api` on 127.0.0.1, so each one runs a
real bootstrap from `sam build` in a Lambda container, against moto. Then the
close function runs through `sam local invoke` on a close event, as EventBridge
Scheduler would invoke it: a RESPONDED ticket past its due time closes; a
stale event (the ticket was reopened since) leaves it alone. The webhook
sender and the sweeper run through `sam local invoke` on their events too,
and every HttpApi function of the template must have served a request. Counts checks and
prints `N passed, N failed`; exits 1 if any failed. Also prints each
request's latency, first call per route (a cold container) apart from the rest.

usage: python scripts/sam_local_walkthrough.py API_URL MOTO_URL ENV_FILE
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from template_functions import functions, load_template

PASSED, FAILED = [], []
LATENCY = {}  # route -> [seconds, ...] in call order


def check(name, ok, detail=""):
    (PASSED if ok else FAILED).append(name)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else f': {detail}'}", flush=True)
    return ok


class Api:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, body=None, route=None, **headers):
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        start = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        LATENCY.setdefault(route or f"{method} {path.split('?')[0]}", []).append(time.monotonic() - start)
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text


def parse_time(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def invoke(function, event, env_file):
    """sam local invoke of `function` on `event` (what its event source would send)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(event, f)
    cmd = ["sam", "local", "invoke", function, "--event", f.name, "--env-vars", env_file]
    cmd += os.environ.get("SAM_LOCAL_EXTRA", "").split()
    start = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    os.unlink(f.name)
    took = time.monotonic() - start
    return run, took


def wait_until_due(ticket):
    due = parse_time(ticket["autoCloseAt"])
    delay = (due - datetime.now(timezone.utc)).total_seconds() + 0.5
    if delay > 0:
        time.sleep(delay)


def main(api_url, moto_url, env_file):
    api = Api(api_url)
    # 1. An org signs up; the secret is shown once.
    s, org = api.call("POST", "/auth/org/signup", {"name": "Growfin", "domain": "growfin.ai"})
    if not check("org signup is 201 with a secret", s == 201 and isinstance(org, dict) and org.get("secret"), f"{s} {org}"):
        return
    secret = org["secret"]
    # 2. Two admins, with the org secret.
    admins = {}
    for who in ("ana", "bob"):
        s, admin = api.call(
            "POST",
            "/auth/admin/signup",
            {"firstName": who, "lastName": "Admin", "email": f"{who}@growfin.ai", "password": "correct horse battery"},
            **{"X-Api-Key": secret},
        )
        check(f"admin signup {who} is 201", s == 201 and isinstance(admin, dict) and "id" in admin, f"{s} {admin}")
        admins[who] = admin.get("id") if isinstance(admin, dict) else None
    # 3. Sign in.
    s, signin = api.call("POST", "/auth/admin/signin", {"email": "ana@growfin.ai", "password": "correct horse battery"})
    if not check("admin signin is 200 with a JWT", s == 200 and isinstance(signin, dict) and signin.get("jwt"), f"{s} {signin}"):
        return
    auth = {"Authorization": f"Bearer {signin['jwt']}"}
    # 4. Three tickets, spread over both admins (least-loaded first).
    tickets = []
    for n in (1, 2, 3):
        s, t = api.call(
            "POST",
            "/tickets",
            {"title": f"Invoice {n} is wrong", "description": "The total is 0.", "addedBy": "carla@customer.example", "secret": secret},
        )
        check(f"create ticket {n} is 201, OPEN", s == 201 and isinstance(t, dict) and t.get("status") == "OPEN", f"{s} {t}")
        tickets.append(t if isinstance(t, dict) else {})
    assigned = {t.get("adminId") for t in tickets}
    check("the tickets are spread over both admins", assigned == set(admins.values()), f"{assigned} vs {admins}")
    ids = [t.get("id") for t in tickets]
    # Lists: newest first, each filter.
    s, page = api.call("GET", "/tickets", route="GET /tickets", **auth)
    check("list is newest first", s == 200 and [t["id"] for t in page["tickets"]] == ids[::-1], f"{s} {page}")
    s, page = api.call("GET", "/tickets?status=OPEN", route="GET /tickets", **auth)
    check("list ?status=OPEN has all three", s == 200 and len(page["tickets"]) == 3, f"{s} {page}")
    s, page = api.call("GET", "/tickets?adminEmail=bob@growfin.ai", route="GET /tickets", **auth)
    bobs = [t["id"] for t in tickets if t.get("adminId") == admins["bob"]][::-1]
    check("list ?adminEmail=bob has bob's tickets", s == 200 and [t["id"] for t in page["tickets"]] == bobs, f"{s} {page}")
    s, page = api.call("GET", "/tickets?customerEmail=carla@customer.example&limit=2", route="GET /tickets", **auth)
    ok = s == 200 and len(page["tickets"]) == 2 and page.get("nextCursor")
    check("list ?customerEmail=carla&limit=2 pages", ok, f"{s} {page}")
    if ok:
        s, rest = api.call("GET", f"/tickets?customerEmail=carla@customer.example&limit=2&cursor={page['nextCursor']}", route="GET /tickets", **auth)
        check("the next page has the third", s == 200 and [t["id"] for t in rest["tickets"]] == [ids[0]], f"{s} {rest}")
    # 5. Respond: RESPONDED, mailed, auto-close pending.
    ticket = ids[-1]
    s, r = api.call("POST", f"/tickets/{ticket}/respond", {"message": "Fixed: the total now includes VAT."}, route="POST /tickets/{id}/respond", **auth)
    ok = s in (200, 201) and isinstance(r, dict)
    body = r.get("ticket", r) if ok else {}
    check("respond makes it RESPONDED with an auto-close", ok and body.get("status") == "RESPONDED" and body.get("autoCloseAt"), f"{s} {r}")
    s, page = api.call("GET", "/tickets?status=RESPONDED", route="GET /tickets", **auth)
    check("list ?status=RESPONDED has it alone", s == 200 and [t["id"] for t in page["tickets"]] == [ticket], f"{s} {page}")
    s, page = api.call("GET", "/tickets?adminEmail=bob@growfin.ai&status=OPEN", route="GET /tickets", **auth)
    want = [t for t in bobs if t != ticket]
    check("list ?adminEmail=bob&status=OPEN combines", s == 200 and [t["id"] for t in page["tickets"]] == want, f"{s} {page}")
    # 6. The mail, read back from moto's SES.
    with urllib.request.urlopen(moto_url.rstrip("/") + "/moto-api/data.json", timeout=10) as m:
        text = m.read().decode()
    check("moto's SES has the mail to carla with the response", "carla@customer.example" in text and "the total now includes VAT" in text, text[:300])
    # 8. Update, then change the status.
    s, t = api.call("POST", f"/tickets/{ticket}", {"title": "Invoice total fixed"}, route="POST /tickets/{id}", **auth)
    check("update sets the title", s == 200 and isinstance(t, dict) and t.get("title") == "Invoice total fixed", f"{s} {t}")
    s, t = api.call("POST", f"/tickets/{ticket}/change_status", {"status": "CLOSED"}, route="POST /tickets/{id}/change_status", **auth)
    check("change_status CLOSED", s == 200 and isinstance(t, dict) and t.get("status") == "CLOSED", f"{s} {t}")
    # 9. The ticket with its response and delivery state.
    s, t = api.call("GET", f"/tickets/{ticket}", route="GET /tickets/{id}", **auth)
    ok = s == 200 and isinstance(t, dict) and t.get("status") == "CLOSED" and len(t.get("responses", [])) == 1
    check("get shows it CLOSED with its response, mail sent", ok and t["responses"][0]["delivery"].get("state") == "sent", f"{s} {t}")

    conversation_and_integration(api, secret, auth, ticket, admins)

    # Auto-close through `sam local invoke`: the event Scheduler would send.
    close_fn = next(name for name, binary, _ in functions(load_template()) if binary == "close-ticket")
    due, stale = ids[0], ids[1]
    states = {}
    for n, tid in ((1, due), (2, stale)):
        s, r = api.call("POST", f"/tickets/{tid}/respond", {"message": "Done."}, route="POST /tickets/{id}/respond", **auth)
        states[tid] = r.get("ticket", r) if isinstance(r, dict) else {}
        check(f"respond to ticket {n} (for a close event)", s in (200, 201) and states[tid].get("status") == "RESPONDED", f"{s} {r}")
    s, t = api.call("POST", f"/tickets/{stale}/change_status", {"status": "OPEN"}, route="POST /tickets/{id}/change_status", **auth)
    check("reopen the second (its close event is now stale)", s == 200 and t.get("status") == "OPEN", f"{s} {t}")
    wait_until_due(states[due])
    for tid, want in ((due, "CLOSED"), (stale, "OPEN")):
        run, took = invoke(close_fn, {"ticketId": tid, "respondedAt": states[tid]["respondedAt"]}, env_file)
        LATENCY.setdefault("sam local invoke close-ticket", []).append(took)
        check(f"sam local invoke {close_fn} exits 0", run.returncode == 0, run.stderr[-2000:])
        s, t = api.call("GET", f"/tickets/{tid}", route="GET /tickets/{id}", **auth)
        check(f"after the close event the ticket is {want}", s == 200 and t.get("status") == want, f"{s} {t}")


def conversation_and_integration(api, secret, auth, ticket, admins):
    """README steps 10-15 and the rest of the integration routes (issues 9 and 10)."""
    key_auth = {"X-Api-Key": secret}
    # 10. The customer replies (the closed ticket reopens); an admin adds a note.
    s, r = api.call("POST", f"/tickets/{ticket}/replies", {"from": "carla@customer.example", "message": "Does it apply to March too?"}, route="POST /tickets/{id}/replies", **key_auth)
    check("a customer reply is 201 and reopens the ticket", s == 201 and isinstance(r, dict) and r.get("ticket", {}).get("status") == "OPEN", f"{s} {r}")
    s, r = api.call("POST", f"/tickets/{ticket}/notes", {"message": "Carla is on the legacy plan."}, route="POST /tickets/{id}/notes", **auth)
    check("an internal note is 201", s == 201, f"{s} {r}")
    # 11. A scoped API key: files tickets, reads nothing, revoked at once.
    s, k = api.call("POST", "/api-keys", {"name": "billing app", "scopes": ["tickets:create"]}, **auth)
    if check("an API key is 201 with the key shown once", s == 201 and isinstance(k, dict) and k.get("key"), f"{s} {k}"):
        scoped = {"X-Api-Key": k["key"]}
        s, t = api.call("POST", "/tickets", {"title": "Export fails", "description": "CSV export times out.", "addedBy": "dan@customer.example"}, **scoped)
        check("the key files a ticket", s == 201, f"{s} {t}")
        s, e = api.call("GET", f"/tickets/{ticket}", route="GET /tickets/{id}", **scoped)
        check("outside its scopes: 403 insufficient_scope", s == 403 and "insufficient_scope" in json.dumps(e), f"{s} {e}")
        s, listed = api.call("GET", "/api-keys", **auth)
        check("the key list shows no key", s == 200 and k["key"] not in json.dumps(listed) and len(listed.get("apiKeys", listed.get("keys", []))) == 1, f"{s} {listed}")
        s, _ = api.call("DELETE", f"/api-keys/{k['id']}", route="DELETE /api-keys/{id}", **auth)
        check("revoking the key is 204", s == 204, f"{s}")
        s, e = api.call("POST", "/tickets", {"title": "t", "description": "d", "addedBy": "dan@customer.example"}, **scoped)
        check("a revoked key is 401", s == 401, f"{s} {e}")
    # 12. The customer's view (org secret): public messages only.
    s, t = api.call("GET", f"/tickets/{ticket}", route="GET /tickets/{id}", **key_auth)
    check("the customer view hides the note", s == 200 and "legacy plan" not in json.dumps(t), f"{s} {t}")
    # 13. History.
    s, h = api.call("GET", f"/tickets/{ticket}/events", route="GET /tickets/{id}/events", **auth)
    check("the history lists the ticket's events", s == 200 and len(h.get("events", [])) >= 5, f"{s} {h}")
    # 14. Admins and availability.
    s, a = api.call("GET", "/admins", **auth)
    check("the admin list has both admins", s == 200 and {x["id"] for x in a.get("admins", [])} == set(admins.values()), f"{s} {a}")
    s, a = api.call("POST", f"/admins/{admins['bob']}/availability", {"available": True}, route="POST /admins/{id}/availability", **auth)
    check("availability is set", s == 200, f"{s} {a}")
    # 15. Webhooks: a private URL is refused (functions never allow one);
    # the per-endpoint routes answer 404 for an endpoint that does not exist.
    s, e = api.call("POST", "/webhooks", {"url": "https://127.0.0.1:9000/hooks", "events": ["ticket.created"]}, **auth)
    check("a private webhook URL is 400 on url", s == 400 and e.get("error", {}).get("field") == "url", f"{s} {e}")
    s, w = api.call("GET", "/webhooks", **auth)
    check("the webhook list is empty", s == 200 and w.get("webhooks") == [], f"{s} {w}")
    none = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    for method, path, route, body in (
        ("DELETE", f"/webhooks/{none}", "DELETE /webhooks/{id}", None),
        ("POST", f"/webhooks/{none}/rotate_secret", "POST /webhooks/{id}/rotate_secret", {}),
        ("GET", f"/webhooks/{none}/deliveries", "GET /webhooks/{id}/deliveries", None),
        ("POST", f"/webhooks/{none}/deliveries/msg_{none}/redeliver", "POST /webhooks/{id}/deliveries/{deliveryId}/redeliver", {}),
    ):
        s, e = api.call(method, path, body, route=route, **auth)
        check(f"{route} of no endpoint is 404", s == 404, f"{s} {e}")
    # A retried POST with an Idempotency-Key is answered, not applied, again.
    body = {"title": "Retry me", "description": "d", "addedBy": "erin@customer.example", "secret": secret}
    first = api.call("POST", "/tickets", body, **{"Idempotency-Key": "walkthrough-1"})
    again = api.call("POST", "/tickets", body, **{"Idempotency-Key": "walkthrough-1"})
    check("an Idempotency-Key replay returns the first ticket", first[0] == again[0] == 201 and first[1].get("id") == again[1].get("id"), f"{first} {again}")
    # Last: the org secret rotates; the old one stops at once.
    s, r = api.call("POST", "/auth/org/secret/rotate", {}, **auth)
    check("the org secret rotates", s == 200 and r.get("secret") and r["secret"] != secret, f"{s} {r}")
    s, e = api.call("GET", f"/tickets/{ticket}", route="GET /tickets/{id}", **key_auth)
    check("the old secret is refused", s == 401, f"{s} {e}")


def invoke_queue_and_schedule_functions(env_file):
    """The webhook sender on its sample SQS event (a delivery that does not
    exist: nothing to send) and the sweeper on its schedule's event."""
    fns = {binary: name for name, binary, _ in functions(load_template())}
    with open("events/webhook-sender.json") as f:
        sample = f.read().replace("<WEBHOOK_ID>", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").replace("<DELIVERY_ID>", "msg_0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
    for binary, event in (("webhook-sender", json.loads(sample)), ("sweeper", {})):
        run, took = invoke(fns[binary], event, env_file)
        LATENCY.setdefault(f"sam local invoke {binary}", []).append(took)
        check(f"sam local invoke {fns[binary]} exits 0", run.returncode == 0, run.stderr[-2000:])
        if binary == "webhook-sender":
            check("the sender reports no failed job", '"batchItemFailures":[]' in run.stdout.replace(" ", ""), run.stdout[-500:])


def every_api_function_was_called():
    """Each HttpApi function of template.yaml served at least one request."""
    for name, _, r in functions(load_template()):
        for e in r["Properties"].get("Events", {}).values():
            if e["Type"] == "HttpApi":
                route = f"{e['Properties']['Method']} {e['Properties']['Path']}"
                check(f"{name} served a request through sam local", route in LATENCY, route)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    try:
        main(*sys.argv[1:])
        invoke_queue_and_schedule_functions(sys.argv[3])
        every_api_function_was_called()
    except Exception as e:  # a crash is a failed check, not a silent stop
        check("walkthrough ran to the end", False, repr(e))
    print("\nlatency through sam local (seconds; first call per route is a cold container):")
    for route, times in LATENCY.items():
        warm = times[1:]
        warm_text = f"warm median {sorted(warm)[len(warm) // 2]:.3f} (n={len(warm)})" if warm else "no warm call"
        print(f"  {route:40} cold {times[0]:.3f}  {warm_text}")
    print(f"\n{len(PASSED)} passed, {len(FAILED)} failed")
    sys.exit(1 if FAILED else 0)
