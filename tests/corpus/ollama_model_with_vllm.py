"""An ollama:// model for vLLM, which cannot read Ollama's store."""

servers = [
    ("gpu-1", {"engine": "vllm", "model": "ollama://llama3.2:3b"}),
]
