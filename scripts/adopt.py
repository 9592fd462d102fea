#!/usr/bin/env python3
"""Adopt the toolkit's deployment pieces for one library into an existing repository.

    scripts/adopt.py LIB DEST [--dry-run] [--force]      (make adopt LIB=celery DEST=../app)

Everything goes under one folder of the target, deploy/taskq/, next to a manifest of what was
written (taskq-adopt.json: the toolkit's version, the library, each file's digest). No file of the
target is changed or deleted: the only thing written outside that folder is a marked block
appended to the root .dockerignore (created when absent), so that the adoption's .env, which holds
secrets, never enters an image build. Before anything is written every step is checked; a file
that exists with other content is a conflict, named, and nothing is written. --force replaces
only files the manifest says an earlier adoption wrote. A second run with nothing new is a no-op.

The toolkit itself is not copied: the app installs it with pip (README, "Use the toolkit in your
app").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBS = ("celery", "rq", "dramatiq", "arq")
FOLDER = Path("deploy/taskq")
MANIFEST = FOLDER / "taskq-adopt.json"
BLOCK_START = "# >>> taskq-toolkit (make adopt): keep the adoption's secrets out of image builds"
BLOCK_END = "# <<< taskq-toolkit"
# The chart's own test fixtures stay behind.
CHART_SKIP = {"ci"}


def toolkit_version() -> str:
    text = (REPO / "recipes" / "taskq" / "_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    if not match:
        raise SystemExit(f"adopt: no __version__ in {REPO / 'recipes/taskq/_version.py'}")
    return match.group(1)


def source_commit() -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"


@dataclass(frozen=True)
class File:
    path: Path  # relative to the target
    content: bytes
    executable: bool = False

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def tree(source: Path, target: Path) -> list[File]:
    """Every file under source (links followed: the charts link their shared library), as target."""
    files = []
    for root, dirs, names in os.walk(source, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in CHART_SKIP and d != "__pycache__")
        for name in sorted(names):
            path = Path(root) / name
            executable = bool(path.stat().st_mode & stat.S_IXUSR)
            files.append(File(target / path.relative_to(source), path.read_bytes(), executable))
    return files


def next_steps(lib: str, version: str) -> str:
    return f"""\
# The task queue toolkit for {lib}, adopted

Written by `make adopt` of taskq-toolkit {version}; `taskq-adopt.json` lists every file and its
digest. `make adopt LIB={lib} DEST=<this repository> FORCE=1` in a newer toolkit checkout
replaces these files (only these: nothing else of the repository is touched).

1. Install the toolkit into your app's image and apply it to your {lib} objects: see "Use the
   toolkit in your app" in the toolkit's README, and `recipes/taskq/{lib}/README.md` there.
2. Docker Compose: `cp deploy/taskq/.env.example deploy/taskq/.env`, fill it in, and add
   `include: [deploy/taskq/compose.yaml]` to your compose.yaml; `docker compose up --wait`
   then runs the worker, scheduler, monitor and exporter on your image. Your image's entrypoint
   must end in `exec "$@"` (as `entrypoint.sh` here does), so that SIGTERM reaches the worker.
   With `taskq-monitoring` in COMPOSE_PROFILES, Prometheus scrapes the exporter and evaluates
   the toolkit's alerts (`monitoring/`, runbooks in `monitoring/README.md`); graphs of the
   queues at http://127.0.0.1:9590/consoles/taskq.html.
3. Kubernetes: fill in `helm/{lib}-values.yaml` (your images, commands, Secrets, volumes), then
   `helm install jobs deploy/taskq/helm/{lib} -f deploy/taskq/helm/{lib}-values.yaml`.

`.env` in this folder, where local secrets go, is ignored by git and left out of image builds.
"""


# What compose.yaml needs beyond the common settings, per library.
APP_SETTINGS = {
    "celery": "TASKQ_APP=myapp.celery:app       # your Celery app (celery --app=...)\n",
    "rq": "TASKQ_APP=myapp.jobs:jobs         # your taskq.rq.Jobs\n",
    "dramatiq": (
        "TASKQ_APP=myapp.tasks:broker      # your broker (the taskq CLI and the dashboard read it)\n"
        "TASKQ_WORKER_MODULES=myapp.tasks   # what `dramatiq` takes: broker set-up, then actors\n"
        "TASKQ_SCHEDULE=myapp.jobs:schedule # your periodic jobs\n"
    ),
    "arq": "TASKQ_APP=myapp.worker:WorkerSettings   # your taskq.arq.worker_settings(...)\n",
}


def env_example(lib: str, version: str) -> str:
    return (
        f"# deploy/taskq/compose.yaml's settings (taskq-toolkit {version}): copy to .env here, which\n"
        "# git and image builds ignore. Your app's own settings stay in your .env (TASKQ_APP_ENV_FILE).\n"
        "TASKQ_IMAGE=myapp:dev             # your app's image (built by your own compose service)\n"
        + APP_SETTINGS[lib]
        + "REDIS_URL=redis://redis:6379/0    # or in your .env\n"
        "# DATABASE_URL=postgresql://...    # passed on when set here or in your .env\n"
        "TASKQ_MONITOR_USER=admin\n"
        "TASKQ_MONITOR_PASSWORD=change-me\n"
        "# TASKQ_MONITOR_PORT=5580          # on 127.0.0.1\n"
        "# JOB_TIME_LIMIT_S=300\n"
        "# STOP_GRACE_PERIOD_S=330          # the time limit + 30; the worker refuses one too short\n"
        "# TASKQ_USER=10001:10001           # the user the services run as\n"
        "# TASKQ_APP_ENV_FILE=../../.env    # your app's settings, relative to deploy/taskq/\n"
        "# COMPOSE_PROFILES=taskq-redis,taskq-postgres   # the toolkit's Redis and Postgres\n"
        "#                  taskq-monitoring             # and Prometheus with the toolkit's alerts\n"
        "# TASKQ_PROMETHEUS_PORT=9590       # on 127.0.0.1\n"
        "# TASKQ_REDIS_PASSWORD=...\n"
        "# TASKQ_POSTGRES_PASSWORD=...\n"
    )


def own_app_values(lib: str, version: str) -> bytes:
    """The chart's values for an app of one's own (the example the tests render and install), to
    fill in."""
    example = (REPO / "helm" / lib / "ci" / "own-app-values.yaml").read_text()
    header = (
        f"# Values of helm/{lib} for your app (taskq-toolkit {version}): put in your images, commands,\n"
        f"# Secrets and volumes, then, from the repository's root:\n"
        f"#   helm install jobs deploy/taskq/helm/{lib} -f deploy/taskq/helm/{lib}-values.yaml\n"
        f"# Every value is listed in helm/{lib}/README.md.\n"
    )
    return (header + example).encode()


def monitoring(folder: Path) -> list[File]:
    """recipes/monitoring/ for compose.yaml's taskq-prometheus (the taskq-monitoring profile):
    scraping taskq-exporter, the alerts' runbook links pointing at the copied README."""
    source, target = REPO / "recipes" / "monitoring", folder / "monitoring"
    rewrites = {
        "prometheus.yml": ('targets: ["exporter:9808"]', 'targets: ["taskq-exporter:9808"]'),
        "alerts.yaml": ("runbook_url: recipes/monitoring/", f"runbook_url: {target.as_posix()}/"),
    }
    files = []
    for file in tree(source, target):
        name = file.path.relative_to(target).as_posix()
        if name == "console.png":  # the toolkit README's picture
            continue
        if name in rewrites:
            old, new = rewrites[name]
            text = file.content.decode()
            if old not in text:
                raise SystemExit(f"adopt: {source / name} no longer has {old!r}, which the copy rewrites")
            file = File(file.path, text.replace(old, new).encode())
        files.append(file)
    return files


def plan(lib: str, version: str) -> list[File]:
    folder = FOLDER
    return [
        *tree(REPO / "helm" / lib, folder / "helm" / lib),
        *tree(REPO / "helm" / "taskq-common", folder / "helm" / "taskq-common"),
        File(folder / "helm" / f"{lib}-values.yaml", own_app_values(lib, version)),
        File(folder / "compose.yaml", (REPO / "compose" / lib / "own-app.yaml").read_bytes()),
        *monitoring(folder),
        File(folder / ".env.example", env_example(lib, version).encode()),
        File(folder / "entrypoint.sh", (REPO / "scripts" / "entrypoint.sh").read_bytes(), executable=True),
        File(folder / ".gitignore", b"# Secrets: never committed.\n.env\n"),
        File(folder / "README.md", next_steps(lib, version).encode()),
    ]


def block() -> str:
    return f"{BLOCK_START}\n{FOLDER.as_posix()}/.env\n{BLOCK_END}\n"


def with_block(existing: str | None) -> str | None:
    """The root .dockerignore with our block in it; None when it is already there as it should be."""
    if existing is None:
        return block()
    pattern = re.compile(re.escape(BLOCK_START) + r"\n.*?" + re.escape(BLOCK_END) + r"\n?", re.S)
    if pattern.search(existing):
        updated = pattern.sub(block().replace("\\", "\\\\"), existing, count=1)
        return None if updated == existing else updated
    return existing + ("" if existing.endswith("\n") or not existing else "\n") + block()


def read_manifest(dest: Path) -> dict:
    path = dest / MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise SystemExit(
            f"adopt: {path} is not the JSON an adoption writes ({error}): move it away"
        ) from None


def adopt(lib: str, dest: Path, dry_run: bool, force: bool) -> int:
    version, manifest = toolkit_version(), read_manifest(dest)
    ours = set(manifest.get("files", {}))
    files = plan(lib, version)
    actions: list[tuple[str, Path, bytes | None, bool]] = []
    conflicts = []
    if manifest and manifest.get("library") != lib and not force:
        conflicts.append(
            f"{MANIFEST}: this repository adopted the toolkit for {manifest.get('library')!r}, not {lib!r};"
            " --force replaces that adoption's files"
        )
    for file in files:
        target = dest / file.path
        if target.is_symlink() or (target.exists() and not target.is_file()):
            conflicts.append(f"{file.path}: exists and is not a plain file")
        elif not target.exists():
            actions.append(("create", file.path, file.content, file.executable))
        elif target.read_bytes() == file.content:
            continue
        elif file.path.as_posix() in ours and force:
            actions.append(("replace", file.path, file.content, file.executable))
        elif file.path.as_posix() in ours:
            conflicts.append(
                f"{file.path}: an earlier adoption wrote it and it differs now:"
                " --force (make: FORCE=1) replaces it"
            )
        else:
            conflicts.append(
                f"{file.path}: exists and is not the toolkit's: move it away, or adopt into a copy"
            )

    dockerignore = dest / ".dockerignore"
    if dockerignore.is_symlink() or (dockerignore.exists() and not dockerignore.is_file()):
        conflicts.append(".dockerignore: exists and is not a plain file")
    else:
        updated = with_block(dockerignore.read_text() if dockerignore.exists() else None)
        if updated is not None:
            existing = dockerignore.read_text() if dockerignore.exists() else None
            verb = "create" if existing is None else "update" if BLOCK_START in existing else "append to"
            actions.append((verb, Path(".dockerignore"), updated.encode(), False))

    if conflicts:
        print(f"adopt: nothing written; {len(conflicts)} conflict(s) in {dest}:", file=sys.stderr)
        for conflict in conflicts:
            print(f"  {conflict}", file=sys.stderr)
        return 1
    written = {f.path.as_posix(): f.digest for f in files}
    record = {"toolkit": version, "source": source_commit(), "library": lib, "files": written}
    if actions or manifest.get("files") != written or manifest.get("library") != lib:
        content = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
        actions.append(("replace" if (dest / MANIFEST).exists() else "create", MANIFEST, content, False))
    if not actions:
        print(f"adopt: {dest} already has the toolkit {version} for {lib}: nothing to do")
        return 0
    for verb, path, content, executable in actions:
        print(f"{'would ' if dry_run else ''}{verb} {path}")
        if dry_run:
            continue
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if executable:
            target.chmod(target.stat().st_mode | 0o111)
    if dry_run:
        print(f"adopt: dry run, nothing written ({len(actions)} step(s) above)")
        return 0
    # An earlier adoption's files this one does not write (another library's chart, a file a
    # newer toolkit dropped) are the user's to delete: nothing here deletes.
    stale = sorted(ours - set(written))
    if stale:
        print(f"left in place, no longer written by this adoption ({len(stale)}): delete them if unused")
        for path in stale:
            print(f"  {path}")
    print(f"\nadopted taskq-toolkit {version} for {lib} into {dest / FOLDER}; next steps:\n")
    print(next_steps(lib, version))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lib", choices=LIBS, help="the task queue library the app uses")
    parser.add_argument("dest", type=Path, help="the repository to adopt into (an existing folder)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be written; write nothing")
    parser.add_argument("--force", action="store_true", help="replace files an earlier adoption wrote")
    args = parser.parse_args(argv)
    if not args.dest.is_dir():
        parser.error(f"DEST={args.dest}: no such folder (the repository to adopt into must exist)")
    return adopt(args.lib, args.dest.resolve(), args.dry_run, args.force)


if __name__ == "__main__":
    sys.exit(main())
