"""The stack's exporter as Prometheus sees it: scraped over the stack's network, its samples
parsed. Shared by the exporter's tests and those that read a gauge while they break something."""

from __future__ import annotations

import re

from tests.integration.stack import Stack

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')
# Run in the app's container (same image): the exporter is not published, as in production.
SCRAPE = """
import sys, urllib.error, urllib.request
try:
    answer = urllib.request.urlopen("http://exporter:9808" + sys.argv[1], timeout=10)
except urllib.error.HTTPError as error:
    answer = error
sys.stdout.write(f"{answer.status}\\n{answer.read().decode()}")
"""


def scrape(stack: Stack, path: str = "/metrics") -> tuple[int, str]:
    status, _, text = stack.exec("app", "python", "-c", SCRAPE, path).stdout.partition("\n")
    return int(status), text


class Metrics(dict):
    """One scrape: (name, ((label, value), ...)) -> value."""

    def total(self, name: str) -> float:
        """Summed over every series of the metric (every queue)."""
        return sum(value for (n, _), value in self.items() if n == name)

    def total_where(self, name: str, **labels: str) -> float:
        """Summed over the series whose labels include these."""
        wanted = set(labels.items())
        return sum(value for (n, found), value in self.items() if n == name and wanted <= set(found))

    def largest(self, name: str) -> float:
        return max((value for (n, _), value in self.items() if n == name), default=0.0)

    def get_one(self, name: str, **labels: str) -> float:
        return self[(name, tuple(sorted(labels.items())))]


def metrics(stack: Stack) -> Metrics:
    status, text = scrape(stack)
    assert status == 200, text
    samples = Metrics()
    for line in text.splitlines():
        if sample := SAMPLE.match(line):
            labels = tuple(sorted(LABEL.findall(sample["labels"] or "")))
            samples[(sample["name"], labels)] = float(sample["value"])
    return samples
