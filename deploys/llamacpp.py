"""pyinfra entry: `pyinfra INVENTORY deploys/llamacpp.py` deploys llamacpp as `llmprov deploy --engine llamacpp` does."""

from llmprov.deploy.engines import deploy_host
from llmprov.deploy.pyinfra_entry import current_host_config

deploy_host(current_host_config(engine="llamacpp"))
