"""Each engine's deploy as a packaged pyinfra `@deploy`, for a user's own deploy files.

from llmprov.deploys import vllm
vllm.deploy(model="hf://HuggingFaceTB/SmolLM2-1.7B-Instruct@main", port=8000)
"""
