#!/usr/bin/env python3
"""Writes the values reference in each chart's README.md from values.schema.json (the
descriptions) and the chart's values.yaml (the defaults). --check: fail if a README is stale."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HELM = Path(__file__).resolve().parent.parent / "helm"
# Every chart but the library chart (which has no values.yaml).
CHARTS = sorted(path.parent.name for path in HELM.glob("*/values.yaml"))
START, END = "<!-- values-reference:start -->", "<!-- values-reference:end -->"
MISSING = object()


def rows(schema: dict[str, Any], values: Any, prefix: str = "") -> list[str]:
    out = []
    for key, prop in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        default = values.get(key, MISSING) if isinstance(values, dict) else MISSING
        if "properties" in prop:
            out += rows(prop, default, f"{path}.")
        elif default is not MISSING:
            out.append(f"| `{path}` | `{json.dumps(default)}` | {prop['description']} |")
    return out


def reference(chart: str) -> str:
    schema = json.loads((HELM / chart / "values.schema.json").read_text())
    values = yaml.safe_load((HELM / chart / "values.yaml").read_text())
    table = "\n".join(["| key | default | description |", "|---|---|---|", *rows(schema, values)])
    return f"{START}\n{table}\n{END}"


def main() -> int:
    stale = []
    for chart in CHARTS:
        readme = HELM / chart / "README.md"
        text = readme.read_text()
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        updated = f"{head}{reference(chart)}{tail}"
        if updated != text:
            stale.append(str(readme))
            if "--check" not in sys.argv:
                readme.write_text(updated)
    if stale and "--check" in sys.argv:
        print("stale values reference (run `make helm-docs`):", *stale, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
