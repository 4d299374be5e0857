"""pyinfra entry: `pyinfra INVENTORY deploys/vllm.py` deploys vllm as `llmprov deploy --engine vllm` does.

A thin wrapper of the packaged deploy; your own deploy file can call it with settings:
`from llmprov.deploys import vllm; vllm.deploy(port=...)`.
"""

from llmprov.deploys import vllm

vllm.deploy()
