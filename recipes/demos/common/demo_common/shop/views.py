"""The stack contract's HTTP API as Django views: enqueue jobs, read their effects, check health.
The demo's enqueue(task, kwargs) -> job id is settings.SHOP_ENQUEUE; settings.SHOP_BROKER_URL is
the broker readiness pings."""

from __future__ import annotations

import functools

import redis
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.db.models import Count, Sum
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from demo_common import psp
from demo_common.contract import MAX_BODY_BYTES, job_call, parse_job
from demo_common.shop import BrokerUnavailableError
from demo_common.shop.models import Attempt, Effect, Order, Tick
from taskq.idempotency import external_key

TOO_LARGE = f"request body is larger than {MAX_BODY_BYTES} bytes; nothing was enqueued"


def refuse_large_bodies(get_response):
    """413 for a declared Content-Length over the limit, before anything reads the body."""

    def middleware(request: HttpRequest):
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared and not declared.isdigit():
            return JsonResponse({"detail": "Content-Length is not a number"}, status=400)
        if declared and int(declared) > MAX_BODY_BYTES:
            return JsonResponse({"detail": TOO_LARGE}, status=413)
        return get_response(request)

    return middleware


@csrf_exempt
@require_POST
def create_job(request: HttpRequest) -> JsonResponse:
    try:
        body = request.body  # a chunked body over DATA_UPLOAD_MAX_MEMORY_SIZE raises here
    except RequestDataTooBig:
        return JsonResponse({"detail": TOO_LARGE}, status=413)
    job, errors = parse_job(body)
    if job is None:
        return JsonResponse({"detail": errors}, status=422)
    key, task, kwargs = job_call(job)
    try:
        job_id = enqueue()(task, kwargs)
    except BrokerUnavailableError as error:
        return JsonResponse(
            {"detail": f"the broker is unavailable, nothing was enqueued: {error}"}, status=503
        )
    return JsonResponse({"id": job_id, "key": key}, status=202)


@require_GET
def effects(request: HttpRequest, key: str) -> JsonResponse:
    attempts = Attempt.objects.filter(key=key).count()
    return JsonResponse({"key": key, "attempts": attempts, "effects": Effect.objects.filter(key=key).count()})


@require_GET
def charges(request: HttpRequest, key: str) -> JsonResponse:
    """The key's attempts and orders, and what the payment provider saw for its external key: read
    in that order, so that an order read here was paid for before the provider is asked."""
    attempts, orders = Attempt.objects.filter(key=key).count(), Order.objects.filter(key=key).count()
    seen = psp.counts(external_key("charge", key))
    return JsonResponse(
        {
            "key": key,
            "attempts": attempts,
            "psp_requests": seen["requests"],
            "psp_charges": seen["charges"],
            "orders": orders,
        }
    )


@require_GET
def ticks(request: HttpRequest) -> JsonResponse:
    counts = Tick.objects.aggregate(slots=Count("slot"), runs=Sum("runs"))
    return JsonResponse({"slots": counts["slots"], "runs": counts["runs"] or 0})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@functools.cache
def enqueue():
    return import_string(settings.SHOP_ENQUEUE)


@functools.cache
def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.SHOP_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {}
    try:
        broker().ping()
        checks["broker"] = "ok"
    except redis.RedisError as error:
        checks["broker"] = f"unavailable: {error}"
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 (any failure means not ready)
        checks["database"] = f"unavailable: {error}"
    return JsonResponse(checks, status=200 if all(v == "ok" for v in checks.values()) else 503)
