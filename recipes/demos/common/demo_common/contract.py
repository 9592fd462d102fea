"""The demo HTTP API's request bodies, as the contract fixes them (../../shared/CONTRACT.md): the
same models for every demo's web framework, so that each refuses the same input the same way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_BODY_BYTES = 64 * 1024
KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,200}$"
Key = Annotated[str, Field(pattern=KEY_PATTERN)]


class DemoJob(BaseModel):
    # strict: "0.5" is not a number and 1.0 is not a count; extra="forbid": a misspelt field is
    # an error, not a silently ignored default.
    model_config = ConfigDict(extra="forbid", strict=True)
    task: Literal["demo"]
    key: Key | None = None
    sleep_s: float = Field(0.5, ge=0, le=24 * 3600)
    fail_times: int = Field(0, ge=0, le=100)


class SendReportJob(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    task: Literal["send_report"]
    user_id: int = Field(gt=0)


class ChargeJob(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    task: Literal["charge"]
    key: Key
    amount_cents: int = Field(gt=0, le=10**9)
    sleep_s: float = Field(0.5, ge=0, le=24 * 3600)
    fail_times: int = Field(0, ge=0, le=100)


JobRequest = Annotated[DemoJob | SendReportJob | ChargeJob, Field(discriminator="task")]
JOB_REQUEST = TypeAdapter(JobRequest)


def job_call(job: DemoJob | SendReportJob | ChargeJob) -> tuple[str, str, dict[str, Any]]:
    """(key, task name, keyword arguments) of an accepted request."""
    if isinstance(job, DemoJob):
        key = job.key or uuid.uuid4().hex
        return key, "demo", {"key": key, "sleep_s": job.sleep_s, "fail_times": job.fail_times}
    if isinstance(job, ChargeJob):
        kwargs = {
            "key": job.key,
            "amount_cents": job.amount_cents,
            "sleep_s": job.sleep_s,
            "fail_times": job.fail_times,
        }
        return job.key, "charge", kwargs
    # One report per user per day: asking twice on the same day sends one.
    key = f"send_report:{job.user_id}:{datetime.now(UTC).date().isoformat()}"
    return key, "send_report", {"user_id": job.user_id, "key": key}


def parse_job(body: bytes) -> tuple[DemoJob | SendReportJob | ChargeJob | None, list[dict[str, Any]]]:
    """The request, or the errors to answer 422 with (each naming its field, as FastAPI does)."""
    try:
        return JOB_REQUEST.validate_json(body), []
    except ValidationError as error:
        return None, [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in error.errors(include_url=False, include_context=False, include_input=False)
        ]
