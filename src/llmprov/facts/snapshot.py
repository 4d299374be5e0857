"""The re-run snapshot as a pyinfra fact: one command per host (core/snapshot.py says what it reads)."""

from __future__ import annotations

from pyinfra.api.facts import FactBase

from llmprov.core.snapshot import Snapshot, SnapshotRequest, parse_snapshot, snapshot_command


class HostSnapshot(FactBase[Snapshot]):
    """Stat and sha256 of paths, users, groups, unit states and named outputs, in one round trip."""

    def command(self, request: SnapshotRequest) -> str:
        return snapshot_command(request)

    @staticmethod
    def default() -> Snapshot:
        # Output-less: nothing is vouched for, so every operation decides from its own facts.
        return Snapshot()

    def process(self, output: list[str]) -> Snapshot:
        return parse_snapshot(output)
