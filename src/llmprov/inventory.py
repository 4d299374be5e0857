"""Loading a pyinfra inventory file the way pyinfra does, and validating every host in it."""

from __future__ import annotations

import ast
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmprov import inventory_file
from llmprov.core.config import HostConfig
from llmprov.core.host_selection import InventoryHost, select_hosts
from llmprov.core.validate import ControllerFiles, FieldError, validate_clusters, validate_host
from llmprov.core.values import check_host_name


class InventoryError(Exception):
    """The inventory could not be loaded or holds bad host data; `errors` lists every fault."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class LoadedInventory:
    path: Path
    inventory: inventory_file.InventoryFile
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
    """The fault as `FILE: line N: ...`: FILE is the inventory as the user gave it, or the
    group_data file that raised (pyinfra runs both by their resolved paths)."""
    ran = str(path.resolve())
    group_data = str(path.resolve().parent / "group_data") + os.sep
    where, shown = "load", str(path)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == ran:
            where, shown = f"line {frame.lineno}", str(path)
        elif frame.filename.startswith(group_data):
            where, shown = f"line {frame.lineno}", frame.filename
    if isinstance(exc, SyntaxError) and exc.lineno:
        where = f"line {exc.lineno}"
        if exc.filename and exc.filename.startswith(group_data):
            shown = exc.filename
    what = "inventory" if shown == str(path) else "group data"
    return FieldError(shown, where, f"the {what} file raised {type(exc).__name__}: {exc}")


def _data_errors(where: str, data: object) -> list[FieldError]:
    if not isinstance(data, dict):
        return [
            FieldError(where, "data", f"must be a mapping of settings, got {type(data).__name__}")
        ]
    return [
        FieldError(where, "data", f"key {key!r} is not a string"[:200])
        for key in data
        if not isinstance(key, str)
    ]


def _host_errors(host: object) -> list[FieldError]:
    name, data = (host[0], host[1]) if isinstance(host, tuple) and len(host) == 2 else (host, {})
    if isinstance(host, tuple) and len(host) != 2:
        return [FieldError(repr(host)[:80], "host", "a host is a name or a (name, data) pair")]
    reason = check_host_name(name)
    if reason is not None:
        return [FieldError(repr(name)[:80], "host", reason)]
    return _data_errors(str(name), data)


def group_shape_errors(groups: dict[str, Any]) -> list[FieldError]:
    """Faults in the shape of an inventory's groups, which pyinfra would turn into a traceback."""
    errors: list[FieldError] = []
    for group, value in groups.items():
        hosts = value
        if isinstance(value, tuple):
            if len(value) != 2:
                errors.append(
                    FieldError(group, "group", "a group is a list of hosts or a (hosts, data) pair")
                )
                continue
            hosts, data = value
            errors.extend(
                FieldError(group, f"group {e.field}", e.reason) for e in _data_errors(group, data)
            )
        if not isinstance(hosts, (list, tuple)):
            errors.append(
                FieldError(group, "group", f"its hosts must be a list, got {type(hosts).__name__}")
            )
            continue
        for host in hosts:
            errors.extend(_host_errors(host))
    return errors


def load_pyinfra_inventory(path: Path, groups: dict[str, Any] | None = None) -> Any:
    """Build a pyinfra Inventory from a Python inventory file, without connecting to any host;
    given `groups` (the file already run by `read_inventory`), pyinfra builds from those."""
    from unittest import mock

    import pyinfra_cli.inventory as cli_inventory
    from pyinfra.api.state import State
    from pyinfra.context import ctx_state

    if not path.is_file():
        raise InventoryError([FieldError(str(path), "path", "inventory file not found")])
    read_groups = cli_inventory._get_groups_from_filename

    def checked_groups(filename: str) -> dict[str, Any]:
        # The one place where the file's groups are seen before pyinfra builds hosts from them;
        # a malformed shape is reported here instead of as a traceback from deep in pyinfra.
        found: dict[str, Any] = read_groups(filename) if groups is None else groups
        errors = group_shape_errors(found)
        if errors:
            raise InventoryError(errors)
        return found

    try:
        # pyinfra executes inventory files under a State context; a bare one touches nothing.
        with (
            ctx_state.use(State()),
            mock.patch.object(cli_inventory, "_get_groups_from_filename", checked_groups),
        ):
            return cli_inventory.make_inventory_from_files(str(path.resolve()))
    except (InventoryError, KeyboardInterrupt):
        raise
    except BaseException as exc:
        # pyinfra wraps what the user's code raised in its own error.
        raise _load_error(path, exc, unwrap=True) from None


def _load_error(path: Path, exc: BaseException, unwrap: bool = False) -> InventoryError:
    """What running an inventory file raised (exit() included), as one error naming the file;
    `unwrap`: the exception is pyinfra's wrapper around the one the user's code raised."""
    if unwrap and not isinstance(exc, SystemExit):
        exc = exc.__cause__ or exc.__context__ or exc
    if isinstance(exc, SystemExit):
        error = FieldError(str(path), "load", f"the inventory file called exit({exc.code!r})")
    else:
        error = _python_error(path, exc)
    return InventoryError([error])


def _parse_or_none(filename: str) -> ast.Module | None:
    # A file that does not parse is reported when it runs, in pyinfra's order.
    try:
        return inventory_file.parse(filename)[1]
    except (SyntaxError, ValueError, OSError):
        return None


def _read_inventory(path: Path) -> inventory_file.InventoryFile:
    resolved = path.resolve()
    group_files = inventory_file.group_data_files(resolved.parent / "group_data")
    trees = {f: _parse_or_none(f) for f in [str(resolved), *group_files]}
    if any(t is not None and inventory_file.imports_pyinfra(t) for t in trees.values()):
        # Group data may read pyinfra's inventory context, which only pyinfra's loader sets.
        return inventory_file.from_pyinfra(path, load_pyinfra_inventory(path))
    tree = trees[str(resolved)] or inventory_file.parse(str(resolved))[1]
    groups = inventory_file.groups_of(inventory_file.exec_file(str(resolved), tree))
    errors = group_shape_errors(groups)
    if errors:
        raise InventoryError(errors)
    if inventory_file.needs_pyinfra(groups) is not None:
        return inventory_file.from_pyinfra(path, load_pyinfra_inventory(path, groups))
    group_data = inventory_file.read_group_data(group_files, trees)
    return inventory_file.build(resolved, groups, group_data)


def read_inventory(path: Path) -> inventory_file.InventoryFile:
    """The hosts, groups and data pyinfra would build from an inventory file, with pyinfra's
    own loader (seconds of imports) only when the files need it: they import pyinfra, or name
    a connector that runs a command to list its hosts."""
    if not path.is_file():
        raise InventoryError([FieldError(str(path), "path", "inventory file not found")])
    try:
        return _read_inventory(path)
    except (InventoryError, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise _load_error(path, exc) from None


def load_inventory(
    path: Path,
    engine_override: str | None = None,
    limit: list[str] | None = None,
    *,
    every_host: bool = False,
) -> LoadedInventory:
    """Load and validate; raise InventoryError listing every bad host and field.

    `engine_override` selects (hosts naming it, or naming none); with `every_host` it is instead
    applied to every host `limit` selects, as `advise` does when it tries each engine on a host."""
    inventory = read_inventory(path)
    files = controller_files(path.resolve().parent)
    hosts: dict[str, HostConfig] = {}
    host_data: dict[str, dict[str, Any]] = {}
    errors: list[FieldError] = []
    selection = select_hosts(
        [InventoryHost(h.name, h.groups, h.data.get("engine")) for h in inventory],
        engine=None if every_host else engine_override,
        limit=limit,
    )
    overrides = (
        dict.fromkeys(selection.selected, engine_override)
        if every_host and engine_override
        else selection.overrides
    )
    errors.extend(selection.errors)
    names = selection.selected
    if not len(inventory) and not errors:
        errors.append(FieldError(str(path), "hosts", "the inventory defines no hosts"))
    for host in inventory:
        if host.name not in names:
            continue
        host_data[host.name] = host.data
        result = validate_host(
            host.name, host.data, files, overrides.get(host.name), str(path.resolve().parent)
        )
        if isinstance(result, list):
            errors.extend(result)
        else:
            hosts[host.name] = result
    # A serving cluster spans hosts: its rules need every host's data, --limit or not.
    all_data = {h.name: h.data for h in inventory}
    hosts, cluster_errors = validate_clusters(hosts, all_data, selected=names)
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
