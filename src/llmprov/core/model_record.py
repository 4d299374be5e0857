"""The digest record beside a placed model: what a re-run compares instead of hashing the model again.

When a model is placed, the sha256 of each of its files is known on the controller (it hashed
them, or the reference pins the digest). The host writes it down beside the model in
`<dest>.llmprov.json`, with each file's size and modification time as the host's `stat` reads
them after the rename. A re-run stats the files (a constant cost, whatever the model's size) and
trusts the recorded digest while size and mtime still match; any edit, truncation or replacement
changes one of them, and the model is hashed again. `verify_models` skips the record and hashes.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RECORD_SCHEMA = 1
# The relative name a single-file model has in a record and a stat listing.
FILE_KEY = "."


def record_path(dest: str) -> str:
    """Beside the model (a file or a folder): its digest record."""
    return f"{dest}.llmprov.json"


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ModelStat:
    """What a host holds at a model's path, by stat only, and the record beside it."""

    files: dict[str, FileStat] = field(default_factory=dict)
    record: dict[str, Any] | None = None


def stat_command(dest: str) -> str:
    """Size and mtime (ns) of the model file, or of every file under the model folder, and the
    record; the model's content is not read."""
    q = shlex.quote(dest)
    r = shlex.quote(record_path(dest))
    fmt = "f %s %.9Y %n"
    return (
        f"if [ -f {q} ]; then stat -c {shlex.quote(fmt.replace('%n', FILE_KEY))} {q}; "
        f"elif [ -d {q} ]; then cd {q} && find . -type f -exec stat -c {shlex.quote(fmt)} {{}} +; "
        f"fi; if [ -f {r} ]; then printf 'r '; tr -d '\\n' < {r}; echo; fi; true"
    )


def _mtime_ns(text: str) -> int:
    """`stat`'s `%.9Y` (`1700000000.123456789`) in nanoseconds, exactly (no float rounding)."""
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def parse_stat(lines: Iterable[str]) -> ModelStat:
    files: dict[str, FileStat] = {}
    record: dict[str, Any] | None = None
    for line in lines:
        kind, _, rest = line.rstrip("\n").partition(" ")
        if kind == "f":
            size, _, rest = rest.partition(" ")
            mtime, _, name = rest.partition(" ")
            try:
                files[_name(name)] = FileStat(int(size), _mtime_ns(mtime))
            except ValueError:
                continue
        elif kind == "r":
            try:
                data = json.loads(rest)
            except ValueError:
                continue
            record = data if isinstance(data, dict) else None
    return ModelStat(files, record)


def _name(raw: str) -> str:
    return raw if raw == FILE_KEY else raw.removeprefix("./")


def recorded_digests(state: ModelStat) -> dict[str, str] | None:
    """{name: sha256} as the record vouches for it: every file it names is there with the size
    and mtime it recorded, and no file is there that it does not name. None otherwise."""
    record = state.record
    if not record or record.get("schema_version") != RECORD_SCHEMA:
        return None
    entries = record.get("files")
    if not isinstance(entries, dict) or set(entries) != set(state.files):
        return None
    out: dict[str, str] = {}
    for name, entry in entries.items():
        seen = state.files[name]
        if not isinstance(entry, dict):
            return None
        if entry.get("size") != seen.size or entry.get("mtime_ns") != seen.mtime_ns:
            return None
        digest = entry.get("sha256")
        if not isinstance(digest, str):
            return None
        out[name] = digest
    return out


def write_record_command(dest: str, digests: Mapping[str, str]) -> str:
    """On the host, after the rename: stat each file and write the record (via a partial, renamed).

    The digests come from the controller; the sizes and mtimes are read here, on the host, so the
    record matches what the next run's stat will see.
    """
    q = shlex.quote
    record = record_path(dest)
    partial = f"{record}.partial"
    lines = ["set -eu", f"exec 3> {q(partial)}"]
    lines.append(f"printf '%s' {q(json.dumps({'schema_version': RECORD_SCHEMA})[:-1])} >&3")
    lines.append("""printf ', "files": {' >&3""")
    for i, (name, digest) in enumerate(sorted(digests.items())):
        path = dest if name == FILE_KEY else f"{dest}/{name}"
        head = ("" if i == 0 else ", ") + json.dumps(name) + ': {"size": '
        lines += [
            f"set -- $(stat -c '%s %.9Y' -- {q(path)})",
            f'printf \'%s%s, "mtime_ns": %s, "sha256": "%s"}}\' {q(head)} "$1" '
            f'"$(printf %s "$2" | tr -d .)" {q(digest)} >&3',
        ]
    lines += ["printf '}}\\n' >&3", "exec 3>&-", shlex.join(["mv", "-f", partial, record])]
    return "bash -c " + q("\n".join(lines))


def remove_record_command(dest: str) -> str:
    """Before a transfer replaces the model: a record must never vouch for a file it did not see."""
    return shlex.join(["rm", "-f", record_path(dest)])
