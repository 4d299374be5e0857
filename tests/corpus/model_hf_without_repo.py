"""A Hugging Face reference without its organisation."""

servers = [
    ("gpu-1", {"engine": "vllm", "model": "hf://gpt2"}),
]
