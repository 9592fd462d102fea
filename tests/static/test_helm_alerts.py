"""The charts' alert rules are generated from recipes/monitoring/alerts.yaml: never stale."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def test_the_charts_alert_rules_are_up_to_date_with_the_rules_file():
    spec = importlib.util.spec_from_file_location("helm_alerts", REPO / "scripts" / "helm-alerts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.TARGET.read_text() == module.render(), "run `make helm-alerts`"
