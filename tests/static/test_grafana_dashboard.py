"""The Grafana dashboard (recipes/monitoring/grafana-dashboard.json): every query parses as PromQL
(promtool, Prometheus 2.42's parser) and reads only metrics the exporter serves."""

from __future__ import annotations

import json
import re

import yaml

from taskq.metrics import METRIC_NAMES
from tests.promtool import MONITORING, promtool

DASHBOARD = json.loads((MONITORING / "grafana-dashboard.json").read_text())
TARGETS = [target for panel in DASHBOARD["panels"] for target in panel["targets"]]
VARIABLES = DASHBOARD["templating"]["list"]
# What Grafana puts in place of its variables before it sends a query.
SUBSTITUTES = {"$job": ".*", "$queue_name": ".*", "$__rate_interval": "5m"}


def concrete(expr: str) -> str:
    for variable, value in SUBSTITUTES.items():
        expr = expr.replace(variable, value)
    return expr


def test_every_query_parses_as_promql(tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": concrete(t["expr"])}
                    for i, t in enumerate(TARGETS)
                ],
            }
        ]
    }
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(TARGETS)} rules found" in result.stdout


def test_every_query_and_variable_reads_only_what_the_exporter_serves():
    queries = [t["expr"] for t in TARGETS] + [v["definition"] for v in VARIABLES if v["type"] == "query"]
    for query in queries:
        names = set(re.findall(r"\b(taskq_[a-z_]+)\b", query))
        assert names and names <= set(METRIC_NAMES), (query, names - set(METRIC_NAMES))


def test_the_panels_are_placed_and_named_once_and_use_the_chosen_data_source():
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in VARIABLES} == {"datasource", "job", "queue_name"}
    for panel in DASHBOARD["panels"]:
        assert panel["title"] and set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] == "${datasource}"
    # the oldest waiting job's panel draws the alerts' thresholds
    [age] = [p for p in DASHBOARD["panels"] if p["title"] == "Oldest waiting job"]
    steps = age["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["value"] for step in steps[1:]] == [300, 900]
