"""`make adopt`: the toolkit's deployment pieces copied into a user's repository, which already
has its own Dockerfile, ignore files, compose file and .env; none of them changes but for one
marked block appended to .dockerignore."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import yaml

from taskq._version import __version__
from tests.conftest import REPO
from tests.helm.render import NAMESPACE, RELEASE, helm
from tests.promtool import alert_rules, promtool
from tests.static.user_repo import USER_FILES, adopt, git


def snapshot(repo: Path) -> dict[str, bytes]:
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


def test_adopting_adds_files_under_one_folder_and_changes_none_but_an_appended_block(repo: Path, lib: str):
    result = adopt(repo, lib)
    assert result.returncode == 0, result.stderr
    changed = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert {line[3:] for line in changed if not line.startswith("??")} == {".dockerignore"}, changed
    assert all(line[3:].startswith("deploy/taskq/") for line in changed if line.startswith("??")), changed
    for name, content in USER_FILES.items():
        now = (repo / name).read_text()
        assert now.startswith(content), name  # appended to, never rewritten
        assert name == ".dockerignore" or now == content, name
    # The whole diff of the repository's own files: the block's 3 lines added, and no line gone
    # (git shows the last line, which lacked its newline, as removed and added again).
    diff = git(repo, "diff", "-U0").splitlines()
    removed = [line[1:] for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]
    assert removed == [".venv"] and added[0] == ".venv" and len(added) == 4, diff


def test_the_adoptions_env_is_ignored_by_git_and_left_out_of_image_builds(repo: Path):
    assert adopt(repo).returncode == 0
    (repo / "deploy/taskq/.env").write_text("REDIS_PASSWORD=secret\n")
    assert git(repo, "check-ignore", "deploy/taskq/.env").strip() == "deploy/taskq/.env"
    untracked = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert "?? deploy/taskq/.env.example" in untracked and "?? deploy/taskq/.env" not in untracked
    patterns = [
        line for line in (repo / ".dockerignore").read_text().splitlines() if not line.startswith("#")
    ]
    assert "deploy/taskq/.env" in patterns
    assert patterns[:3] == [".git", "**/__pycache__", ".venv"]  # the user's rules, first and unchanged


def test_a_missing_dockerignore_is_created_with_only_the_block(repo: Path):
    (repo / ".dockerignore").unlink()
    assert adopt(repo).returncode == 0
    lines = (repo / ".dockerignore").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["deploy/taskq/.env"]


def test_what_it_writes_is_stamped_with_the_toolkit_version_and_every_files_digest(repo: Path):
    assert adopt(repo, "rq").returncode == 0
    manifest = json.loads((repo / "deploy/taskq/taskq-adopt.json").read_text())
    assert manifest["toolkit"] == __version__ and manifest["library"] == "rq"
    on_disk = {
        p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (repo / "deploy/taskq").rglob("*")
        if p.is_file() and p.name != "taskq-adopt.json"
    }
    assert manifest["files"] == on_disk
    assert f"taskq-toolkit {__version__}" in (repo / "deploy/taskq/README.md").read_text()


def test_the_dry_run_lists_each_step_and_writes_nothing(repo: Path):
    before = snapshot(repo)
    result = adopt(repo, DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    assert snapshot(repo) == before
    steps = result.stdout.splitlines()
    assert "would append to .dockerignore" in steps
    assert "would create deploy/taskq/entrypoint.sh" in steps


def test_a_second_run_is_a_no_op(repo: Path):
    assert adopt(repo).returncode == 0
    before = snapshot(repo)
    result = adopt(repo)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert snapshot(repo) == before


def test_a_file_of_the_users_in_the_way_is_named_and_nothing_is_written_even_with_force(repo: Path):
    (repo / "deploy/taskq").mkdir(parents=True)
    (repo / "deploy/taskq/README.md").write_text("our own notes\n")
    before = snapshot(repo)
    for options in ({}, {"FORCE": "1"}):
        result = adopt(repo, **options)
        assert result.returncode != 0
        assert "deploy/taskq/README.md: exists and is not the toolkit's" in result.stderr
        assert snapshot(repo) == before


def test_force_replaces_only_what_an_earlier_adoption_wrote(repo: Path):
    assert adopt(repo).returncode == 0
    ours = repo / "deploy/taskq/entrypoint.sh"
    ours.write_text('#!/bin/sh\nexec "$@"  # edited\n')
    (repo / "deploy/taskq/notes.md").write_text("the user's\n")
    refused = adopt(repo)
    assert refused.returncode != 0
    assert "deploy/taskq/entrypoint.sh: an earlier adoption wrote it and it differs now" in refused.stderr
    assert "edited" in ours.read_text()
    assert adopt(repo, FORCE="1").returncode == 0
    assert ours.read_bytes() == (REPO / "scripts/entrypoint.sh").read_bytes()
    assert ours.stat().st_mode & 0o111
    assert (repo / "deploy/taskq/notes.md").read_text() == "the user's\n"


def test_adopting_another_library_over_an_adoption_needs_force_and_deletes_nothing(repo: Path):
    assert adopt(repo, "celery").returncode == 0
    refused = adopt(repo, "arq")
    assert refused.returncode != 0
    assert "adopted the toolkit for 'celery', not 'arq'" in refused.stderr
    assert not (repo / "deploy/taskq/helm/arq").exists()
    forced = adopt(repo, "arq", FORCE="1")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((repo / "deploy/taskq/taskq-adopt.json").read_text())["library"] == "arq"
    # Celery's chart is not deleted: named, for the user to delete.
    assert (repo / "deploy/taskq/helm/celery/Chart.yaml").exists()
    assert "  deploy/taskq/helm/celery/Chart.yaml" in forced.stdout.splitlines()


def test_an_unknown_library_or_missing_repository_is_refused_with_the_setting(repo: Path, tmp_path: Path):
    unknown = adopt(repo, "huey")
    assert unknown.returncode != 0 and "invalid choice: 'huey'" in unknown.stderr
    missing = adopt(tmp_path / "nowhere")
    assert missing.returncode != 0 and "DEST=" in missing.stderr and "no such folder" in missing.stderr


def test_the_adopted_chart_renders_as_the_toolkits_own_and_with_its_values_for_your_app(repo: Path, lib: str):
    assert adopt(repo, lib).returncode == 0

    def template(chart: Path, *options: str) -> list[dict]:
        args = [str(helm()), "template", RELEASE, str(chart), "--namespace", NAMESPACE, *options]
        rendered = subprocess.check_output(args, text=True, stderr=subprocess.DEVNULL)
        # Generated passwords differ from one render to the next.
        return [
            {**o, "data": None} if o["kind"] == "Secret" else o for o in yaml.safe_load_all(rendered) if o
        ]

    adopted = template(repo / "deploy/taskq/helm" / lib)
    own_app = template(
        repo / "deploy/taskq/helm" / lib, "--values", str(repo / f"deploy/taskq/helm/{lib}-values.yaml")
    )
    assert "app" not in [o["metadata"]["labels"].get("app.kubernetes.io/component") for o in own_app]
    assert adopted and adopted == template(REPO / "helm" / lib)
    assert not [p for p in (repo / "deploy/taskq").rglob("*") if p.is_symlink()]


def test_the_adopted_prometheus_scrapes_the_adopted_exporter_with_the_toolkits_alerts(repo: Path, lib: str):
    """The taskq-monitoring profile of the adopted compose file: Prometheus on 127.0.0.1 only, its
    configuration the adopted monitoring/ folder, read-only, which promtool accepts (with every
    alert) and which scrapes the adopted exporter; each alert's runbook is in the copied README."""
    assert adopt(repo, lib).returncode == 0
    folder = repo / "deploy" / "taskq"
    # The settings as the adoption's .env.example gives them (the file refuses to render without).
    files = ["--file", str(folder / "compose.yaml"), "--env-file", str(folder / ".env.example")]
    result = subprocess.run(
        ["docker", "compose", *files, "--profile", "taskq-monitoring", "config", "--format", "json"],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home())},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    prometheus = services["taskq-prometheus"]
    assert [(p["host_ip"], p["target"]) for p in prometheus["ports"]] == [("127.0.0.1", 9090)]
    (mount,) = [v for v in prometheus["volumes"] if v["target"] == "/etc/taskq-monitoring"]
    assert Path(mount["source"]) == folder / "monitoring" and mount["read_only"]
    assert prometheus["depends_on"]["taskq-exporter"]["condition"] == "service_healthy"

    config = folder / "monitoring" / "prometheus.yml"
    checked = promtool("check", "config", str(config))
    assert checked.returncode == 0 and f"{len(alert_rules())} rules found" in checked.stdout, checked.stdout
    scrapes = yaml.safe_load(config.read_text())["scrape_configs"]
    targets = [t for job in scrapes for group in job["static_configs"] for t in group["targets"]]
    exporter = services["taskq-exporter"]["command"]
    (port,) = [arg.removeprefix("--port=") for arg in exporter if arg.startswith("--port=")]
    assert targets == [f"taskq-exporter:{port}"]
    adopted_alerts = yaml.safe_load((folder / "monitoring" / "alerts.yaml").read_text())["groups"]
    readme = (folder / "monitoring" / "README.md").read_text()
    for rule in (rule for group in adopted_alerts for rule in group["rules"] if "alert" in rule):
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert (repo / page) == folder / "monitoring" / "README.md" and f"\n## {rule['alert']}\n" in readme
        assert anchor == rule["alert"].lower()
