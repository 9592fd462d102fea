"""`python -m demo_common.psp_server`: a stand-in payment provider, the `psp` service.

It records every request. A charge carries an Idempotency-Key header (as Stripe's API takes one):
a repeated key answers with the first charge and creates none; the same key with another amount
is refused with 409. GET /v1/keys/KEY reports the requests and charges seen for a key. State is
in memory: the demo's tests read it while the stack runs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("psp")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,255}$")
MAX_BODY_BYTES = 4096


class Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.charges: dict[str, dict[str, Any]] = {}

    def charge(self, key: str, amount_cents: int) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            first = self.charges.get(key)
            if first is None:
                first = self.charges[key] = {
                    "id": f"ch_{len(self.charges) + 1}",
                    "amount_cents": amount_cents,
                }
                return 201, first
            if first["amount_cents"] != amount_cents:
                return 409, {"error": f"key already used for {first['amount_cents']} cents"}
            return 200, first

    def counts(self, key: str) -> dict[str, int]:
        with self.lock:
            return {"requests": self.requests.get(key, 0), "charges": int(key in self.charges)}


class Handler(BaseHTTPRequestHandler):
    ledger: Ledger
    server_version = "psp"

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self.answer(200, {"status": "ok"})
        elif (match := re.fullmatch(r"/v1/keys/(.+)", self.path)) and KEY_PATTERN.match(match.group(1)):
            self.answer(200, self.ledger.counts(match.group(1)))
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        key = self.headers.get("Idempotency-Key", "")
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/v1/charges":
            self.answer(404, {"error": "not found"})
            return
        if not KEY_PATTERN.match(key) or not 0 < length <= MAX_BODY_BYTES:
            self.answer(400, {"error": "an Idempotency-Key header and a JSON body are required"})
            return
        try:
            amount = json.loads(self.rfile.read(length))["amount_cents"]
        except (ValueError, KeyError, TypeError):
            self.answer(400, {"error": 'the body must be {"amount_cents": n}'})
            return
        if not isinstance(amount, int) or amount <= 0:
            self.answer(400, {"error": "amount_cents must be a positive whole number"})
            return
        status, body = self.ledger.charge(key, amount)
        log.info("charge %s %s cents: %s", key, amount, status)
        self.answer(status, body)

    def log_message(self, *_: Any) -> None:
        pass  # one line per charge is logged above


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Handler.ledger = Ledger()
    port = int(os.environ.get("PSP_PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    log.info("listening on %s", port)
    server.serve_forever()


if __name__ == "__main__":
    main()
