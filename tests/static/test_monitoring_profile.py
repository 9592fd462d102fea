"""The Compose stacks' `monitoring` profile (`make up MONITORING=1`): a Prometheus that only that
profile starts, configured from recipes/monitoring/ to scrape the exporter and load the alerts.
tests/integration/test_monitoring.py runs it."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.conftest import REPO
from tests.promtool import MONITORING, promtool
from tests.static.helpers import compose_model

CONFIG = MONITORING / "prometheus.yml"


def flag(command: list[str], name: str) -> str:
    return next(arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}="))


def test_prometheus_runs_only_with_the_monitoring_profile(lib: str):
    assert "prometheus" not in compose_model(lib)["services"]
    prometheus = compose_model(lib, COMPOSE_PROFILES="monitoring")["services"]["prometheus"]
    assert prometheus["depends_on"]["exporter"]["condition"] == "service_healthy"


def test_prometheus_reads_its_config_and_console_from_the_recipes_folder(lib: str):
    prometheus = compose_model(lib, COMPOSE_PROFILES="monitoring")["services"]["prometheus"]
    mounts = {volume["target"]: volume for volume in prometheus["volumes"]}
    command = prometheus["command"]
    config = flag(command, "config.file")
    folder = mounts[config.rsplit("/", 1)[0]]
    assert folder["type"] == "bind" and folder["read_only"] is True
    assert folder["source"] == str(MONITORING)
    assert (MONITORING / config.rsplit("/", 1)[1]).is_file()
    consoles = flag(command, "web.console.templates").removeprefix(folder["target"] + "/")
    assert (MONITORING / consoles / "taskq.html").is_file()
    # Its data on a volume: the root filesystem is read-only.
    assert mounts[flag(command, "storage.tsdb.path")]["type"] == "volume"


def test_promtool_accepts_the_config_and_the_rules_it_loads():
    result = promtool("check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SUCCESS: \d+ rules found", result.stdout), result.stdout


def test_prometheus_scrapes_the_port_the_exporter_listens_on(lib: str):
    services = compose_model(lib, COMPOSE_PROFILES="monitoring")["services"]
    port = flag(services["exporter"]["command"], "port")
    targets = [
        target
        for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert targets == [f"exporter:{port}"]


def test_the_official_image_is_the_one_images_sh_falls_back_from(lib: str):
    """scripts/images.sh builds the stand-in when this image cannot be pulled: one name for both."""
    official = subprocess.run(
        [str(REPO / "scripts" / "images.sh"), "env"],
        env={"PATH": "/usr/bin:/bin", "TASKQ_IMAGES": "official"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wanted = dict(line.split("=", 1) for line in official.splitlines())["PROMETHEUS_IMAGE"]
    assert compose_model(lib, COMPOSE_PROFILES="monitoring")["services"]["prometheus"]["image"] == wanted


def test_the_console_page_has_no_template_action():
    """Prometheus reads the page as a Go template: double braces would be taken as actions."""
    assert not re.search(r"\{\{|\}\}", (MONITORING / "consoles" / "taskq.html").read_text())
