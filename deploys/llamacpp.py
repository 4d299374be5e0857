"""pyinfra entry: `pyinfra INVENTORY deploys/llamacpp.py` deploys llamacpp as `llmprov deploy --engine llamacpp` does.

A thin wrapper of the packaged deploy; your own deploy file can call it with settings:
`from llmprov.deploys import llamacpp; llamacpp.deploy(port=...)`.
"""

from llmprov.deploys import llamacpp

llamacpp.deploy()
