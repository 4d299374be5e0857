"""Loading a pyinfra inventory file the way pyinfra does, and validating every host in it."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmprov.core.config import HostConfig
from llmprov.core.host_selection import InventoryHost, select_hosts
from llmprov.core.validate import ControllerFiles, FieldError, validate_clusters, validate_host


class InventoryError(Exception):
    """The inventory could not be loaded or holds bad host data; `errors` lists every fault."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class LoadedInventory:
    path: Path
    inventory: Any  # pyinfra.api.Inventory
    hosts: dict[str, HostConfig]
    host_data: dict[str, dict[str, Any]]
    # Hosts --engine left out (their data names another engine), with why; never contacted.
    left_out: dict[str, str] = field(default_factory=dict)


def controller_files(base: Path) -> ControllerFiles:
    """Controller file access with paths relative to the inventory's folder."""

    def resolve(p: str) -> Path:
        path = Path(p.removeprefix("file://")).expanduser()
        return path if path.is_absolute() else base / path

    return ControllerFiles(
        read=lambda p: resolve(p).read_text(encoding="utf-8"),
        exists=lambda p: resolve(p).exists(),
    )


def _python_error(path: Path, exc: BaseException) -> FieldError:
    """The fault as `PATH: line N: ...`, PATH as the user gave it (pyinfra ran the resolved path)."""
    ran = str(path.resolve())
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == ran]
    where = f"line {frames[-1].lineno}" if frames else "load"
    if isinstance(exc, SyntaxError) and exc.lineno:
        where = f"line {exc.lineno}"
    return FieldError(str(path), where, f"the inventory file raised {type(exc).__name__}: {exc}")


def load_pyinfra_inventory(path: Path) -> Any:
    """Build a pyinfra Inventory from a Python inventory file, without connecting to any host."""
    from pyinfra.api.state import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory_from_files

    if not path.is_file():
        raise InventoryError([FieldError(str(path), "path", "inventory file not found")])
    try:
        # pyinfra executes inventory files under a State context; a bare one touches nothing.
        with ctx_state.use(State()):
            return make_inventory_from_files(str(path.resolve()))
    except Exception as exc:
        cause = exc.__cause__ or exc.__context__ or exc
        raise InventoryError([_python_error(path, cause)]) from exc


def load_inventory(
    path: Path, engine_override: str | None = None, limit: list[str] | None = None
) -> LoadedInventory:
    """Load and validate; raise InventoryError listing every bad host and field."""
    inventory = load_pyinfra_inventory(path)
    files = controller_files(path.resolve().parent)
    hosts: dict[str, HostConfig] = {}
    host_data: dict[str, dict[str, Any]] = {}
    errors: list[FieldError] = []
    selection = select_hosts(
        [InventoryHost(h.name, tuple(h.groups), h.data.dict().get("engine")) for h in inventory],
        engine=engine_override,
        limit=limit,
    )
    errors.extend(selection.errors)
    names = selection.selected
    if not len(inventory) and not errors:
        errors.append(FieldError(str(path), "hosts", "the inventory defines no hosts"))
    for host in inventory:
        if host.name not in names:
            continue
        data = host.data.dict()
        host_data[host.name] = data
        result = validate_host(
            host.name, data, files, selection.overrides.get(host.name), str(path.resolve().parent)
        )
        if isinstance(result, list):
            errors.extend(result)
        else:
            hosts[host.name] = result
    # A serving cluster spans hosts: its rules need every host's data, --limit or not.
    hosts, cluster_errors = validate_clusters(
        hosts, {h.name: h.data.dict() for h in inventory}, selected=names
    )
    errors.extend(cluster_errors)
    if errors:
        raise InventoryError(errors)
    return LoadedInventory(
        path=path,
        inventory=inventory,
        hosts=hosts,
        host_data=host_data,
        left_out=selection.left_out,
    )
