"""The charts' alert rules and dashboard are generated from recipes/monitoring/: never stale."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def test_the_charts_copies_of_the_rules_and_the_dashboard_are_up_to_date():
    spec = importlib.util.spec_from_file_location("helm_monitoring", REPO / "scripts" / "helm-monitoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path, text in module.outputs().items():
        assert path.read_text() == text, f"{path} is stale: run `make helm-monitoring`"
