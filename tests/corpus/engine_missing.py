"""No engine at all, and no --engine on the command line."""

servers = [
    ("gpu-1", {"model": "hf://Qwen/Qwen2.5-0.5B-Instruct"}),
]
