"""promtool (Prometheus 2.42's, unpacked by `make prom-tools`), for the exporter's output and the
alert rules; and the alert rules as the tests read them."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO

PROMTOOL = REPO / ".tools" / "prometheus" / "promtool"
MONITORING = REPO / "recipes" / "monitoring"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    assert PROMTOOL.exists(), "promtool is missing: run `make prom-tools`"
    return subprocess.run(
        [str(PROMTOOL), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def check_metrics(text: str) -> None:
    """promtool's lint of an exposition (names, units, help): it prints what it finds."""
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )


def alert_rules() -> list[dict]:
    """The alerting rules of recipes/monitoring/alerts.yaml, every group's (recording rules left out)."""
    import yaml  # not in the adapter tests' environments, which use the promtool helpers only

    groups = yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]
