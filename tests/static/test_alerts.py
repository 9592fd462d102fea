"""The alert rules: valid for Prometheus 2.42, each alert tested by promtool (fires, and its
look-alikes do not), each one documented and built only on metrics the exporter serves."""

from __future__ import annotations

import re

import pytest
import yaml

from taskq.metrics import METRIC_NAMES
from tests.conftest import REPO
from tests.promtool import MONITORING, alert_rules, promtool

RULES = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
ALERTS = alert_rules()
EXPORTED = set(METRIC_NAMES) | {"up", "time"}


def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", str(MONITORING / "alerts.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass_and_cover_every_alert():
    result = promtool("test", "rules", str(MONITORING / "alerts_test.yaml"))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
    tests = yaml.safe_load((MONITORING / "alerts_test.yaml").read_text())["tests"]
    checks = [check for test in tests for check in test["alert_rule_test"]]
    for alert in ALERTS:
        mine = [check for check in checks if check["alertname"] == alert["alert"]]
        assert any(check["exp_alerts"] for check in mine), f"{alert['alert']}: no case where it fires"
        assert any(not check["exp_alerts"] for check in mine), f"{alert['alert']}: no case where it must not"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda alert: alert["alert"])
def test_each_alert_says_what_and_how_bad_and_links_its_runbook(alert):
    assert alert["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = alert["annotations"]
    assert annotations["summary"].endswith(".") and "{{" not in annotations["summary"]
    assert "{{ $labels." in annotations["description"]
    page, _, anchor = annotations["runbook_url"].partition("#")
    assert anchor == alert["alert"].lower()
    headings = re.findall(r"^## (\S+)$", (REPO / page).read_text(), flags=re.MULTILINE)
    assert alert["alert"] in headings


@pytest.mark.parametrize("alert", ALERTS, ids=lambda alert: alert["alert"])
def test_each_alert_reads_only_metrics_the_exporter_serves(alert):
    names = set(re.findall(r"\b(taskq_[a-z_]+|up)\b", alert["expr"]))
    assert names and names <= EXPORTED, names - EXPORTED


def test_the_rules_use_nothing_prometheus_2_42_lacks():
    for group in RULES["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"}, group.keys()  # labels, query_offset: 3.x
