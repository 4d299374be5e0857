"""pyinfra entry: `pyinfra INVENTORY deploys/ollama.py` deploys ollama as `llmprov deploy --engine ollama` does.

A thin wrapper of the packaged deploy; your own deploy file can call it with settings:
`from llmprov.deploys import ollama; ollama.deploy(port=...)`.
"""

from llmprov.deploys import ollama

ollama.deploy()
