"""The node (milestone M1 of the cluster tests): the kubelet runs pods on containerd from images
built here, and pods reach each other through a ClusterIP Service by its DNS name."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from tests.cluster.conftest import RESTRICTED_CONTAINER, load_images, run, wait_for_phase
from tests.conftest import REPO

pytestmark = pytest.mark.cluster

SERVER = (
    "import http.server, os\n"
    "class Hello(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = ('hello from ' + os.environ['HOSTNAME']).encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    "http.server.HTTPServer(('', 8000), Hello).serve_forever()\n"
)
CLIENT = (
    "import sys, urllib.request\n"
    "for url in sys.argv[1:]:\n"
    "    print(url, urllib.request.urlopen(url, timeout=10).read().decode())\n"
)


@pytest.fixture(scope="session")
def python_image() -> str:
    """The Python base image the app images build on (official or stand-in), built here."""
    image = os.environ.get("PYTHON_IMAGE", "")
    assert image, "PYTHON_IMAGE is unset: run the cluster tests with `make test-cluster`"
    load_images(image)
    return image


def test_the_node_is_ready_and_runs_the_kubelet_we_build(api):
    (node,) = client.CoreV1Api(api).list_node().items
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "True", ready
    assert node.status.node_info.kubelet_version.startswith("v1.35."), node.status.node_info
    assert node.status.node_info.container_runtime_version.startswith("containerd://"), node.status.node_info


def test_up_again_leaves_the_running_cluster_as_it_is(api):
    """`make cluster-up` on a healthy cluster (NetworkPolicy firewall included) restarts nothing."""
    run_dir = Path(os.environ["TASKQ_CLUSTER_STATE"]) / "run"

    def daemons() -> dict[str, int]:
        return {f.stem: int(f.read_text()) for f in run_dir.glob("*.pid")}

    before = daemons()
    assert {"kube-apiserver", "kubelet", "kube-router"} <= set(before), before
    run(str(REPO / "scripts" / "cluster" / "up.sh"), timeout=120)
    assert daemons() == before
    for name, pid in before.items():
        assert Path(f"/proc/{pid}").exists(), f"{name} ({pid}) is gone"


def test_a_pod_from_a_local_image_is_reached_through_a_service_by_its_dns_name(
    api, python_image: str, restricted_namespace
):
    namespace, core = restricted_namespace("node"), client.CoreV1Api(api)
    web = f"web-{uuid.uuid4().hex[:6]}"
    container = {**RESTRICTED_CONTAINER, "image": python_image}
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": web, "labels": {"app": web}},
            "spec": {"containers": [{**container, "name": "web", "command": ["python3", "-c", SERVER]}]},
        },
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": web}, "ports": [{"port": 80, "targetPort": 8000}]},
        },
    )
    wait_for_phase(core, namespace, web, {"Running"})

    urls = ["http://web", f"http://web.{namespace}.svc.cluster.local"]
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "client"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{**container, "name": "client", "command": ["python3", "-c", CLIENT, *urls]}],
            },
        },
    )
    phase = wait_for_phase(core, namespace, "client", {"Succeeded", "Failed"})
    log = core.read_namespaced_pod_log("client", namespace)
    assert phase == "Succeeded", log
    assert log.splitlines() == [f"{url} hello from {web}" for url in urls], log


def guard_drops() -> dict[tuple[str, str], int]:
    """Packets dropped so far by up.sh's guard rules (they carry its comment), by (source,
    destination)."""
    listing = run("iptables", "-t", "mangle", "-L", "POSTROUTING", "-v", "-x", "-n").stdout
    drops = {}
    for line in listing.splitlines():
        fields = line.split()
        if "taskq-cluster" in line and fields[2] == "DROP":
            drops[(fields[7], fields[8])] = int(fields[0])
    assert drops, listing
    return drops


def test_nothing_addressed_to_the_cluster_or_sent_by_a_pod_leaves_the_machine(
    api, python_image: str, restricted_namespace
):
    """A Service address nothing answers for yet, a pod address, and a pod's packet to the
    outside world would take the host's default route: the guard rules drop them there."""
    before = guard_drops()
    for address in ("10.96.255.254", "10.244.255.254"):
        # A packet netfilter drops on its way out of this host fails the send itself.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(PermissionError):
            sock.sendto(b"guard", (address, 9))
    namespace, core = restricted_namespace("guard"), client.CoreV1Api(api)
    send = (
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'guard', ('203.0.113.1', 9))"
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "sender"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        **RESTRICTED_CONTAINER,
                        "image": python_image,
                        "name": "sender",
                        "command": ["python3", "-c", send],
                    }
                ],
            },
        },
    )
    assert wait_for_phase(core, namespace, "sender", {"Succeeded", "Failed"}) == "Succeeded"
    after = guard_drops()
    grew = {rule for rule in after if after[rule] > before.get(rule, 0)}
    anywhere = "0.0.0.0/0"
    assert {(anywhere, "10.96.0.0/16"), (anywhere, "10.244.0.0/16"), ("10.244.0.0/16", anywhere)} <= grew, (
        before,
        after,
    )
