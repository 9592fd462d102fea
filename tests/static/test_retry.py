"""The retry policy: which errors are transient, how long each retry waits."""

from __future__ import annotations

import subprocess
import sys

import pytest

from taskq.retry import Permanent, RetryLater, RetryPolicy, Transient


def raised(factory):
    try:
        factory()
    except BaseException as error:  # noqa: BLE001
        return error
    raise AssertionError("nothing was raised")


def library_errors():
    """Connection errors and timeouts as each library raises them."""
    import asyncpg
    import django.db.utils
    import httpx
    import psycopg
    import psycopg2
    import redis
    import requests
    import sqlalchemy.exc

    return {
        "builtin ConnectionRefusedError": ConnectionRefusedError(111, "refused"),
        "builtin TimeoutError": TimeoutError("timed out"),
        "redis ConnectionError": redis.exceptions.ConnectionError("gone"),
        "redis TimeoutError": redis.exceptions.TimeoutError("slow"),
        "redis BusyLoadingError": redis.exceptions.BusyLoadingError("loading"),
        "psycopg 3 OperationalError": psycopg.OperationalError("server closed the connection"),
        "psycopg 3 deadlock": psycopg.errors.DeadlockDetected("deadlock"),
        "psycopg 2 OperationalError": psycopg2.OperationalError("server closed the connection"),
        "asyncpg connection lost": asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
        "SQLAlchemy OperationalError": sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("gone")),
        "SQLAlchemy pool timeout": sqlalchemy.exc.TimeoutError("QueuePool limit"),
        "Django OperationalError": django.db.utils.OperationalError("could not connect"),
        "requests ConnectionError": requests.exceptions.ConnectionError("refused"),
        "requests ReadTimeout": requests.exceptions.ReadTimeout("slow"),
        "httpx ConnectTimeout": httpx.ConnectTimeout("slow"),
        "httpx RemoteProtocolError": httpx.RemoteProtocolError("closed"),
        "requests 503": raised(lambda: _requests_status(503).raise_for_status()),
        "httpx 429": raised(lambda: _httpx_status(429).raise_for_status()),
    }


def _requests_status(code: int):
    import requests

    response = requests.Response()
    response.status_code, response.url = code, "http://provider.example/charge"
    return response


def _httpx_status(code: int):
    import httpx

    return httpx.Response(code, request=httpx.Request("POST", "http://provider.example/charge"))


@pytest.mark.parametrize("name", sorted(library_errors()))
def test_connection_errors_and_timeouts_of_common_libraries_are_transient(name: str):
    assert RetryPolicy().is_transient(library_errors()[name])


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad input"),
        KeyError("missing"),
        ZeroDivisionError(),
        Permanent("never"),
    ],
    ids=repr,
)
def test_bugs_and_bad_input_are_not_retried(error: Exception):
    assert not RetryPolicy().is_transient(error)


def test_http_client_errors_are_not_retried():
    assert not RetryPolicy().is_transient(raised(lambda: _requests_status(404).raise_for_status()))
    assert not RetryPolicy().is_transient(raised(lambda: _httpx_status(422).raise_for_status()))


def test_an_app_declares_its_own_transient_errors_and_may_drop_the_defaults():
    class PaymentGatewayBusyError(Exception):
        pass

    class DeclinedError(Permanent, ConnectionError):
        pass

    policy = RetryPolicy(transient=(PaymentGatewayBusyError,))
    assert policy.is_transient(PaymentGatewayBusyError()) and policy.is_transient(Transient())
    assert not policy.is_transient(DeclinedError())  # Permanent wins over a transient base
    strict = RetryPolicy(include_defaults=False)
    assert not strict.is_transient(ConnectionError()) and strict.is_transient(RetryLater("held", 1.0))


def test_classifying_an_error_imports_no_library():
    """The defaults are looked up among modules already imported: a module never imported cannot
    have raised."""
    code = (
        "import sys; from taskq.retry import RetryPolicy; RetryPolicy().is_transient(ValueError()); "
        "print(sorted(m for m in ('redis', 'psycopg', 'psycopg2', 'sqlalchemy', 'django', 'requests', "
        "'httpx', 'asyncpg', 'kombu') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env())
    assert out.stdout.strip() == "[]"


def _env() -> dict[str, str]:
    from tests.conftest import REPO

    return {"PYTHONPATH": str(REPO / "recipes"), "PATH": "/usr/bin:/bin"}


def test_backoff_grows_exponentially_and_jitter_never_reorders_it():
    policy = RetryPolicy(base_s=2.0)
    for jitter in (0.0, 0.5, 0.999):
        delays = [policy.delay_s(n, jitter) for n in range(3)]
        assert delays[0] == pytest.approx(2.0 * (1 + jitter * 0.5))
        assert delays[0] < delays[1] < delays[2]
    assert RetryPolicy().delay_s(0, 0.999) < RetryPolicy().delay_s(1, 0.0)
    assert len({RetryPolicy().delay_s(1) for _ in range(20)}) > 1  # jitter spreads retries
    assert RetryPolicy().max_delay_s == pytest.approx(4 * 1.5)


def test_a_deferral_waits_for_the_lease_but_never_longer_than_a_retry_and_never_zero():
    policy = RetryPolicy()
    assert policy.defer_s(2.0) == 2.0
    assert policy.defer_s(300.0) == policy.max_delay_s
    assert policy.defer_s(-1.0) > 0
