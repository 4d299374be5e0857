"""Ollama on real sandbox hosts, from a local mirror laid out like the official releases.

The archives hold the stand-in under tests/standins/ (the real binary cannot be had here), so
these tests prove the deploy's part: download, checksum, unpack beside the running version, the
`current` link, the unit and its drop-in, the service user, and what an upgrade that fails leaves.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standins.ollama_archive import build_release

from llmprov.checks.after_deploy import prove
from llmprov.cli.main import main
from llmprov.deploy import ollama as ollama_deploy
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.lifecycle import uninstall_host
from llmprov.deploy.runner import HostResult, run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost

pytestmark = pytest.mark.host

ROOT = "/opt/llmprov/ollama"
MODEL = "smollm2:135m"


def write_inventory(path: Path, host: SandboxHost, version: str, mirror: dict[str, str]) -> Path:
    name, data = host.inventory_entry()
    data = {
        **data,
        "engine": "ollama",
        "model": f"ollama://{MODEL}",
        "mirror": mirror,
        "ollama": {"version": version, "keep_alive": "10m", "num_parallel": 2},
    }
    path.write_text(f"hosts = [({name!r}, {json.dumps(data)})]\n")
    return path


def deploy(tmp_path: Path, host: SandboxHost, version: str, mirror: dict[str, str]) -> HostResult:
    inventory = write_inventory(tmp_path / f"inv-{version}.py", host, version, mirror)
    return run_pyinfra(load_inventory(inventory), deploy_host).results[host.name]


def on_host(harness: Harness, host: SandboxHost, *argv: str) -> str:
    return harness.run(host, list(argv), check=True, timeout=30).stdout.strip()


def api_version(harness: Harness, host: SandboxHost) -> dict[str, Any]:
    code = (
        "import json, urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:11434/api/version', timeout=5).read().decode())"
    )
    return json.loads(on_host(harness, host, "python3", "-c", code))  # type: ignore[no-any-return]


def current_target(harness: Harness, host: SandboxHost) -> str:
    return on_host(harness, host, "readlink", f"{ROOT}/current")


def failed_at(result: HostResult) -> list[str]:
    return [op.name for op in result.ops if not op.success]


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    folder = tmp_path / "mirror"
    folder.mkdir()
    return folder


@pytest.fixture
def mirror_url(harness: Harness, sandbox_host: SandboxHost, mirror: Path) -> str:
    return f"http://{sandbox_host.gateway}:{harness.serve_directory(mirror)}"


class _DyingHandler(SimpleHTTPRequestHandler):
    """Serves a folder, but sends only the first CUT bytes of archives, then drops the connection."""

    CUT = 4096

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.name.startswith("ollama-linux-") or not path.is_file():
            super().do_GET()
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: self.CUT])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def dying_mirror_url(sandbox_host: SandboxHost, mirror: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("0.0.0.0", 0), partial(_DyingHandler, directory=str(mirror)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{sandbox_host.gateway}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fresh_install_serves_the_pinned_version_and_a_rerun_changes_nothing(
    harness: Harness, sandbox_host: SandboxHost, mirror: Path, mirror_url: str, tmp_path: Path
) -> None:
    build_release(mirror, "0.12.5", formats=("tgz", "zst"))
    first = deploy(tmp_path, sandbox_host, "0.12.5", {"ollama_base_url": mirror_url})
    assert first.ok, (first.error, failed_at(first))
    assert any(
        op.name.startswith("Download and verify ollama-linux-amd64.tar.zst") for op in first.changed
    )

    answer = api_version(harness, sandbox_host)
    assert answer["version"] == "0.12.5"
    assert "stand-in" in answer["standin"]
    assert current_target(harness, sandbox_host) == f"{ROOT}/0.12.5"
    assert (
        on_host(harness, sandbox_host, "stat", "-c", "%U", "/usr/share/ollama/.ollama/models")
        == "ollama"
    )
    dropin = on_host(
        harness, sandbox_host, "cat", "/etc/systemd/system/ollama.service.d/llmprov.conf"
    )
    assert 'Environment="OLLAMA_NUM_PARALLEL=2"' in dropin
    assert on_host(harness, sandbox_host, "systemctl", "is-enabled", "ollama.service") == "enabled"

    loaded = load_inventory(tmp_path / "inv-0.12.5.py")
    proof = prove(
        loaded.hosts[sandbox_host.name],
        loaded.host_data[sandbox_host.name],
        run_bench=False,
        ready_timeout_s=30,
    )
    assert proof.smoke is not None and proof.smoke.ok, proof.smoke

    second = deploy(tmp_path, sandbox_host, "0.12.5", {"ollama_base_url": mirror_url})
    assert second.ok, (second.error, failed_at(second))
    assert [op.name for op in second.changed] == [], "a re-run must change nothing"
    assert not any("Download" in op.name for op in second.ops)


def test_upgrade_switches_the_link_keeps_the_previous_and_rolls_back_by_one_link(
    harness: Harness, sandbox_host: SandboxHost, mirror: Path, mirror_url: str, tmp_path: Path
) -> None:
    build_release(mirror, "0.12.5", formats=("tgz",))  # an older release: .tgz only
    build_release(mirror, "0.12.6", formats=("tgz", "zst"))
    source = {"ollama_base_url": mirror_url}
    assert deploy(tmp_path, sandbox_host, "0.12.5", source).ok

    upgrade = deploy(tmp_path, sandbox_host, "0.12.6", source)
    assert upgrade.ok, (upgrade.error, failed_at(upgrade))
    assert any("upgrade" in op.name for op in upgrade.changed)
    assert api_version(harness, sandbox_host)["version"] == "0.12.6"
    assert current_target(harness, sandbox_host) == f"{ROOT}/0.12.6"
    assert on_host(harness, sandbox_host, "ls", ROOT).split() == ["0.12.5", "0.12.6", "current"]
    # Models outlive the binary.
    assert MODEL in on_host(harness, sandbox_host, "/usr/local/bin/ollama", "list")

    back = deploy(tmp_path, sandbox_host, "0.12.5", source)
    assert back.ok, (back.error, failed_at(back))
    assert not any("Download" in op.name for op in back.ops), "a rollback downloads nothing"
    assert api_version(harness, sandbox_host)["version"] == "0.12.5"

    # `llmprov rollback` goes back to the version the state record keeps, and proves it.
    inventory = str(tmp_path / "inv-0.12.5.py")
    record = json.loads(on_host(harness, sandbox_host, "cat", "/etc/llmprov/state.json"))
    engine = record["engines"]["ollama"]
    assert engine["current"]["version"] == "0.12.5"
    assert [p["version"] for p in engine["previous"]] == ["0.12.6"]
    assert main(["rollback", inventory, "-y"]) == 0
    assert api_version(harness, sandbox_host)["version"] == "0.12.6"
    assert current_target(harness, sandbox_host) == f"{ROOT}/0.12.6"

    # `llmprov uninstall` keeps the models and removes what llmprov installed; a re-run changes nothing.
    assert main(["uninstall", inventory, "-y"]) == 0
    gone = harness.run(
        sandbox_host, ["test", "-e", ROOT, "-o", "-e", "/etc/systemd/system/ollama.service"]
    )
    assert gone.returncode != 0, "the install root and the unit are removed"
    assert on_host(harness, sandbox_host, "ls", "-A", "/usr/share/ollama/.ollama/models") != ""
    loaded = load_inventory(Path(inventory))
    again = run_pyinfra(loaded, uninstall_host).results[sandbox_host.name]
    assert again.ok and [op.name for op in again.changed] == []


def test_a_bad_checksum_stops_the_upgrade_and_the_old_version_keeps_serving(
    harness: Harness, sandbox_host: SandboxHost, mirror: Path, mirror_url: str, tmp_path: Path
) -> None:
    build_release(mirror, "0.12.5")
    build_release(mirror, "0.12.6")
    sums = mirror / "v0.12.6" / "sha256sum.txt"
    sums.write_text("0" * 64 + "  ./ollama-linux-amd64.tgz\n")
    source = {"ollama_base_url": mirror_url}
    assert deploy(tmp_path, sandbox_host, "0.12.5", source).ok

    upgrade = deploy(tmp_path, sandbox_host, "0.12.6", source)
    assert not upgrade.ok
    assert failed_at(upgrade)[0].startswith("Download and verify ollama-linux-amd64.tgz (0.12.6")
    assert api_version(harness, sandbox_host)["version"] == "0.12.5"
    assert current_target(harness, sandbox_host) == f"{ROOT}/0.12.5"
    assert on_host(harness, sandbox_host, "ls", "-A", ROOT).split() == ["0.12.5", "current"]
    downloads = on_host(harness, sandbox_host, "ls", "-A", "/var/cache/llmprov/ollama/downloads")
    assert downloads == "", "nothing unverified is left behind"


def test_a_mirror_dying_mid_download_stops_the_upgrade_and_the_old_version_keeps_serving(
    harness: Harness,
    sandbox_host: SandboxHost,
    mirror: Path,
    mirror_url: str,
    dying_mirror_url: str,
    tmp_path: Path,
) -> None:
    build_release(mirror, "0.12.5")
    build_release(mirror, "0.12.6")
    assert deploy(tmp_path, sandbox_host, "0.12.5", {"ollama_base_url": mirror_url}).ok

    upgrade = deploy(tmp_path, sandbox_host, "0.12.6", {"ollama_base_url": dying_mirror_url})
    assert not upgrade.ok
    assert failed_at(upgrade)[0].startswith("Download and verify ollama-linux-amd64.tgz (0.12.6")
    assert api_version(harness, sandbox_host)["version"] == "0.12.5"
    assert current_target(harness, sandbox_host) == f"{ROOT}/0.12.5"
    downloads = on_host(harness, sandbox_host, "ls", "-A", "/var/cache/llmprov/ollama/downloads")
    assert downloads == "", "the partial download is removed"


def test_a_new_version_that_does_not_start_is_rolled_back(
    harness: Harness,
    sandbox_host: SandboxHost,
    mirror: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # From a folder on the controller this time (mirror.ollama_dir): uploaded, then verified.
    build_release(mirror, "0.12.5")
    build_release(mirror, "0.12.7", broken=True)
    monkeypatch.setattr(ollama_deploy, "READY_TIMEOUT_S", 8)
    source = {"ollama_dir": str(mirror)}
    assert deploy(tmp_path, sandbox_host, "0.12.5", source).ok

    upgrade = deploy(tmp_path, sandbox_host, "0.12.7", source)
    assert not upgrade.ok
    assert failed_at(upgrade)[0] == "Wait for Ollama 0.12.7 on /api/version"
    assert current_target(harness, sandbox_host) == f"{ROOT}/0.12.5"
    assert api_version(harness, sandbox_host)["version"] == "0.12.5"
