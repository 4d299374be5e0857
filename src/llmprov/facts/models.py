"""Facts about the served model on a host: what a model folder holds, by content or by stat."""

from __future__ import annotations

from pyinfra.api.facts import FactBase

from llmprov.core.model_pull import folder_manifest_command, parse_manifest
from llmprov.core.model_record import ModelStat, parse_stat, stat_command


class FolderManifest(FactBase[dict[str, str]]):
    """{relative name: sha256} of every file under a folder; empty when the folder is absent."""

    def command(self, path: str) -> str:
        return folder_manifest_command(path)

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def process(self, output: list[str]) -> dict[str, str]:
        return parse_manifest(output)


class ModelFiles(FactBase[ModelStat]):
    """Size and mtime of a model file (or of each file of a model folder) and the digest record
    beside it; reads no model content, so its cost does not grow with the model."""

    def command(self, path: str) -> str:
        return stat_command(path)

    @staticmethod
    def default() -> ModelStat:
        return ModelStat()

    def process(self, output: list[str]) -> ModelStat:
        return parse_stat(output)
