"""Where each engine's files live on a host: one place for every path a deploy writes or a unit reads."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmprov.core.config import HostConfig

INSTALL_ROOT = "/opt/llmprov"
ENV_DIR = "/etc/llmprov"
STATE_ROOT = "/var/lib/llmprov"
CACHE_ROOT = "/var/cache/llmprov"
SYSTEMD_DIR = "/etc/systemd/system"
# The Hugging Face token, for the pull step alone (root reads it; no service's environment has it).
HF_PULL_ENV = f"{ENV_DIR}/hf-pull.env"

# The format each engine serves; a model in another format is converted on the way in.
ENGINE_FORMAT: dict[str, str] = {"vllm": "hf", "llamacpp": "gguf", "ollama": "ollama"}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A served-model name made safe for one path component."""
    return _UNSAFE.sub("_", name).strip("._") or "model"


@dataclass(frozen=True)
class EngineLayout:
    engine: str

    @property
    def root(self) -> str:
        """Versioned installs live under here, each in its own folder."""
        return f"{INSTALL_ROOT}/{self.engine}"

    @property
    def current(self) -> str:
        """The link that the service runs through; switching versions is one link."""
        return f"{self.root}/current"

    def version_dir(self, key: str) -> str:
        return f"{self.root}/{key}"

    @property
    def env_file(self) -> str:
        return f"{ENV_DIR}/{self.engine}.env"

    @property
    def state_dir(self) -> str:
        return f"{STATE_ROOT}/{self.engine}"

    @property
    def models_dir(self) -> str:
        return f"{STATE_ROOT}/{self.engine}/models"

    @property
    def cache_dir(self) -> str:
        return f"{CACHE_ROOT}/{self.engine}"

    @property
    def unit_name(self) -> str:
        # Ollama keeps its upstream unit name so that its docs and users' habits still apply.
        return "ollama.service" if self.engine == "ollama" else f"llmprov-{self.engine}.service"

    @property
    def unit_path(self) -> str:
        return f"{SYSTEMD_DIR}/{self.unit_name}"

    @property
    def dropin_path(self) -> str:
        return f"{SYSTEMD_DIR}/{self.unit_name}.d/llmprov.conf"

    @property
    def compose_dir(self) -> str:
        return f"{INSTALL_ROOT}/compose/{self.engine}"


OLLAMA_HOME = "/usr/share/ollama"
OLLAMA_LINUX_MODELS = f"{OLLAMA_HOME}/.ollama/models"


def model_path(cfg: HostConfig) -> str:
    """Where the served model lives on the host, in the format the engine serves."""
    layout = EngineLayout(cfg.engine)
    name = safe_name(cfg.served_model_name)
    if cfg.engine == "llamacpp":
        return f"{layout.models_dir}/{name}.gguf"
    if cfg.engine == "vllm":
        return f"{layout.models_dir}/{name}"
    return cfg.settings.ollama.models_dir or OLLAMA_LINUX_MODELS
