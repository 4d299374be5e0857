"""A Hugging Face reference with '@' and no revision after it."""

servers = [
    ("gpu-1", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct@"}),
]
