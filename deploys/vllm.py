"""pyinfra entry: `pyinfra INVENTORY deploys/vllm.py` deploys vllm as `llmprov deploy --engine vllm` does."""

from llmprov.deploy.engines import deploy_host
from llmprov.deploy.pyinfra_entry import current_host_config

deploy_host(current_host_config(engine="vllm"))
