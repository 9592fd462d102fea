"""The demo's client of the stand-in payment provider (the `psp` service, psp_server.py)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from taskq.retry import Permanent, Transient

TIMEOUT_S = 5


class PaymentRefusedError(Permanent):
    """The provider refused the charge (another amount under the same idempotency key)."""


def base_url() -> str:
    return os.environ.get("PSP_URL", "http://psp:8080")


def _call(request: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (our own service)
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        if error.code == 409:
            raise PaymentRefusedError(f"the provider refused the charge: {detail}") from None
        raise Transient(f"the provider answered {error.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError) as error:
        raise Transient(f"the provider is unreachable: {error}") from None


def charge(amount_cents: int, idempotency_key: str) -> dict[str, Any]:
    """Charge amount_cents; the provider answers a repeated key with the first charge."""
    body = json.dumps({"amount_cents": amount_cents}).encode()
    request = urllib.request.Request(  # noqa: S310
        f"{base_url()}/v1/charges",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
    )
    return _call(request)


def counts(idempotency_key: str) -> dict[str, int]:
    """How many requests and charges the provider saw for a key."""
    request = urllib.request.Request(f"{base_url()}/v1/keys/{idempotency_key}")  # noqa: S310
    return _call(request)
