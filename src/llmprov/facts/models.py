"""Facts about the served model on a host: what a model folder holds, by content."""

from __future__ import annotations

from pyinfra.api.facts import FactBase

from llmprov.core.model_pull import folder_manifest_command, parse_manifest


class FolderManifest(FactBase[dict[str, str]]):
    """{relative name: sha256} of every file under a folder; empty when the folder is absent."""

    def command(self, path: str) -> str:
        return folder_manifest_command(path)

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def process(self, output: list[str]) -> dict[str, str]:
        return parse_manifest(output)
