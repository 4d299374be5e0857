"""pyinfra entry: `pyinfra INVENTORY deploys/ollama.py` deploys ollama as `llmprov deploy --engine ollama` does."""

from llmprov.deploy.engines import deploy_host
from llmprov.deploy.pyinfra_entry import current_host_config

deploy_host(current_host_config(engine="ollama"))
