"""Fixtures for tests on real sandbox hosts (root, systemd-nspawn): one harness, a host per test.

Run with `.venv/bin/pytest -m host tests/host` as root; the first run builds the Debian base.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llmprov.sandbox import Harness, SandboxHost, default_cache_dir

HERE = Path(__file__).parent
_serial = itertools.count(1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/host needs the harness: mark it so the default run leaves it out."""
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.host)


def _host_name() -> str:
    """A name unique across concurrent test runs (pid) and within one (serial), within 12 chars."""
    return f"t{os.getpid():x}-{next(_serial)}"


@pytest.fixture
def host_name() -> Callable[[], str]:
    """Makes fresh host names, for tests that boot hosts of their own."""
    return _host_name


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return default_cache_dir(os.environ, Path.home())


@pytest.fixture(scope="session")
def harness(cache_dir: Path) -> Iterator[Harness]:
    with Harness(cache_dir) as session_harness:
        yield session_harness


@pytest.fixture
def sandbox_host(harness: Harness) -> Iterator[SandboxHost]:
    host = harness.boot(_host_name())
    try:
        yield host
    finally:
        harness.stop(host)
