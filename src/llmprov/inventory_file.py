"""Reading a pyinfra inventory file as pyinfra 3.10 reads it (hosts, groups, data), without importing pyinfra."""

from __future__ import annotations

import ast
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Each step below mirrors one function of pyinfra 3.10 (pyinfra_cli/inventory.py, pyinfra/api/
# inventory.py, pyinfra/api/host.py), in the same order and with the same mutations, so that a
# test can hold the two loaders equal.

_HOST_TYPES = (str, tuple)


@dataclass(frozen=True)
class FileHost:
    name: str
    groups: tuple[str, ...]  # as pyinfra's Host.groups, in order (repeats included)
    data: dict[str, Any]  # as pyinfra's host.data.dict(): all < groups in order < host


@dataclass(frozen=True)
class InventoryFile:
    """An inventory as pyinfra builds it, minus the connections."""

    path: Path  # resolved, as pyinfra runs it
    hosts: dict[str, FileHost]  # in pyinfra's order
    groups: dict[str, tuple[str, ...]]  # group -> host names, as Inventory.groups

    def __iter__(self) -> Iterator[FileHost]:
        return iter(self.hosts.values())

    def __len__(self) -> int:
        return len(self.hosts)


class NeedsPyinfra(Exception):
    """The inventory uses what only pyinfra can give it: its modules, or a connector that runs
    a command (@terraform, @vagrant) or warns (@chroot, @dockerssh) to name its hosts."""


def imports_pyinfra(tree: ast.AST) -> bool:
    """Whether the code imports pyinfra (group data may read `pyinfra.inventory`, set only there)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        if any(m.split(".")[0] in ("pyinfra", "pyinfra_cli") for m in modules):
            return True
    return False


def parse(filename: str) -> tuple[str, ast.Module]:
    with open(filename, encoding="utf-8") as f:
        source = f.read()
    return source, ast.parse(source, filename=filename)


def exec_file(filename: str, tree: ast.Module) -> dict[str, Any]:
    """pyinfra_cli.util.exec_file(..., return_locals=True): the module's globals, `__file__` set
    and nothing else (so `__name__` is the builtins'); unlike pyinfra's, no code cache."""
    attrs: dict[str, Any] = {"__file__": filename}
    exec(compile(tree, filename, "exec"), attrs)
    return attrs


def _is_group(key: str, value: Any) -> bool:
    """pyinfra_cli.inventory._is_inventory_group, its errors (an empty tuple) included."""
    if key.startswith("_"):
        return False
    if isinstance(value, list):
        hosts = value
    elif isinstance(value, tuple):
        hosts = value[0]
    else:
        return False
    if not all(isinstance(item, _HOST_TYPES) for item in hosts):
        import logging  # only here: a run without this warning need not import it

        # pyinfra's own warning, on its own logger, as pyinfra gives it.
        logging.getLogger("pyinfra").warning(
            'Ignoring host group "%s". '
            "Host groups may only contain strings (host) or tuples (host, data).",
            key,
        )
        return False
    return True


def groups_of(attrs: dict[str, Any]) -> dict[str, Any]:
    """The module-level names of an executed inventory that pyinfra takes for groups."""
    return {key: value for key, value in attrs.items() if _is_group(key, value)}


def _imported_names(tree: ast.Module) -> set[str]:
    """pyinfra_cli.inventory._get_imported_names: names bound by top-level imports."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names if a.name != "*")
    return names


def group_data_files(folder: Path) -> list[str]:
    """The files pyinfra_cli.inventory._get_group_data executes, in its (listdir) order."""
    if not folder.exists():
        return []
    if folder.is_file():
        files = [str(folder)]
    else:
        files = [str(folder / name) for name in os.listdir(folder)]
    return [f for f in files if f.endswith(".py")]


def read_group_data(
    files: list[str], trees: dict[str, ast.Module | None]
) -> dict[str, dict[str, Any]]:
    """pyinfra_cli.inventory._get_group_data over `files`, those parsed already in `trees`."""
    group_data: dict[str, dict[str, Any]] = {}
    for file in files:
        tree = trees.get(file) or parse(file)[1]
        attrs = exec_file(file, tree)
        keys: Any = (
            attrs["__all__"]
            if "__all__" in attrs
            else [k for k in attrs if k not in _imported_names(tree)]
        )
        group_data[Path(file).stem] = {
            key: value for key, value in attrs.items() if key in keys and not key.startswith("__")
        }
    return group_data


def connector_hosts(name: str) -> list[tuple[str, dict[str, Any], list[str]]] | None:
    """What `make_names_data` yields for an `@connector[/arg]` host, for the connectors that
    only rename (pyinfra's local, fake, ssh, docker, podman; llmprov's winrm); None otherwise."""
    connector, slash, arg = name[1:].partition("/")
    given = arg if slash else None
    if connector == "local":
        return [("@local", {}, ["@local"])] if given is None else None
    if connector == "fake":
        if not given:
            return [("@fake", {}, ["@fake"])]
        subs = (s.strip() for s in given.split(","))
        return [(f"@fake/{s}", {}, ["@fake"]) for s in subs if s]
    if connector == "ssh":
        return [(f"@ssh/{given}", {"ssh_hostname": given}, [])]
    if connector in ("docker", "podman") and given:
        return [(f"@{connector}/{given}", {"docker_identifier": given}, [f"@{connector}"])]
    if connector == "winrm" and given:
        return [(f"@winrm/{given}", {"winrm_hostname": given}, ["@winrm"])]
    return None


def _first(item: Any) -> Any:
    return item[0] if isinstance(item, tuple) else item


def _name_data(names: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """pyinfra.api.inventory.extract_name_data."""
    for name in names:
        data: dict[str, Any] = {}
        if isinstance(name, tuple):
            data = name[1]
            name = name[0]
        yield name, data


def needs_pyinfra(groups: dict[str, Any]) -> str | None:
    """The first host name only pyinfra can expand (a connector llmprov does not mirror)."""
    for value in groups.values():
        for host in _first(value):
            name = _first(host)
            if name.startswith("@") and connector_hosts(name) is None:
                return str(name)
    return None


def _with_group_data(
    path: Path, groups: dict[str, Any], group_data_of: dict[str, dict[str, Any]]
) -> tuple[tuple[list[Any], dict[str, Any]], dict[str, tuple[list[Any], dict[str, Any]]]]:
    """pyinfra_cli.inventory.make_inventory_from_files, up to `Inventory(...)`: (names, data) of
    `all`, and every other group as (hosts, data)."""
    file_group = path.name.rsplit(".", 1)[0]
    all_data: dict[str, Any] = {}
    if "all" in groups:
        all_hosts = groups.pop("all")
        if isinstance(all_hosts, tuple):
            all_hosts, all_data = all_hosts
    else:
        all_hosts = []
        for hosts in groups.values():
            for host in _first(hosts):
                hostname = _first(host)
                if hostname not in all_hosts:
                    all_hosts.append(hostname)
    groups["all"] = (all_hosts, all_data)
    if file_group not in groups:
        groups[file_group] = all_hosts
    if "names_data" in groups:
        # Where pyinfra builds its stand-in Inventory((names, data), **groups) for group data.
        raise TypeError("Inventory.__init__() got multiple values for argument 'names_data'")
    group_data: dict[str, dict[str, Any]] = defaultdict(dict)
    for group_name, data in group_data_of.items():
        group_data[group_name].update(data)
    for name, hosts in groups.items():
        data = {}
        if isinstance(hosts, tuple):
            hosts, data = hosts
        if name in group_data:
            # In place, as pyinfra does: a dict two groups share gets both groups' file data.
            data.update(group_data.pop(name))
        groups[name] = (hosts, data)
    for name, data in group_data.items():
        groups[name] = ([], data)
    names_data = groups.pop("all")
    if "override_data" in groups:
        # Inventory(names_data, override_data=None, **groups) cannot take this group.
        raise TypeError(
            "pyinfra.api.inventory.Inventory() got multiple values for keyword argument "
            "'override_data'"
        )
    return names_data, groups


def build(
    path: Path, groups: dict[str, Any], group_data_of: dict[str, dict[str, Any]]
) -> InventoryFile:
    """The inventory pyinfra makes from a file's `groups` (mutated, as pyinfra mutates them) and
    its group_data files' data; `path` is the inventory file, resolved."""
    (names, inventory_data), groups_data = _with_group_data(path, groups, group_data_of)
    # pyinfra.api.inventory.Inventory.make_hosts_and_groups
    group_data: dict[str, dict[str, Any]] = {}
    name_to_data: dict[str, dict[str, Any]] = defaultdict(dict)
    name_to_groups: dict[str, list[str]] = defaultdict(list)
    for group_name, (group_names, data) in groups_data.items():
        group_data[group_name] = data
        for name, host_data in _name_data(group_names):
            name_to_data[name].update(host_data)
            name_to_groups[name].append(group_name)
    for name, host_data in _name_data(names):
        name_to_data[name].update(host_data)
    host_data_of: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for name, _ in _name_data(names):
        data = name_to_data[name]
        subs = connector_hosts(name) if name[0] == "@" else None
        if name[0] == "@" and subs is None:
            raise NeedsPyinfra(name)
        for sub_name, sub_data, sub_groups in subs or [(name, {}, [])]:
            sub_data.update(data.copy())
            host_data_of[sub_name] = sub_data
            order.append(sub_name)
            name_to_groups[sub_name].extend(sub_groups)
            if subs is not None:
                name_to_groups[sub_name].extend(name_to_groups[name])
    inventory_groups: dict[str, list[str]] = defaultdict(list)
    for name in order:
        # pyinfra makes a new Host per listing and dedups by identity: a name listed twice in
        # `all` is in its groups twice, a group named twice in its list once per listing.
        for group_name in dict.fromkeys(name_to_groups[name]):
            inventory_groups[group_name].append(name)
    hosts: dict[str, FileHost] = {}
    for name in dict.fromkeys(order):
        # pyinfra.api.host.HostData.dict(): the last of all, groups, host wins.
        merged: dict[str, Any] = dict(inventory_data)
        for group_name in name_to_groups[name]:
            merged.update(group_data.get(group_name, {}))
        merged.update(host_data_of.get(name, {}))
        hosts[name] = FileHost(name, tuple(name_to_groups[name]), merged)
    return InventoryFile(
        path=path,
        hosts=hosts,
        groups={g: tuple(names) for g, names in inventory_groups.items()},
    )


def from_pyinfra(path: Path, inventory: Any) -> InventoryFile:
    """The same view of an inventory pyinfra built (`pyinfra.api.Inventory`)."""
    return InventoryFile(
        path=path.resolve(),
        hosts={h.name: FileHost(h.name, tuple(h.groups), h.data.dict()) for h in inventory},
        groups={g: tuple(h.name for h in hs) for g, hs in inventory.groups.items()},
    )
