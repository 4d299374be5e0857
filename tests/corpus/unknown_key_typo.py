"""'engine' misspelt: the typo is reported with a hint, and engine is then missing."""

servers = [
    ("gpu-1", {"egnine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct"}),
]
