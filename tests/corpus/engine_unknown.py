"""An engine llmprov does not deploy."""

servers = [
    ("gpu-1", {"engine": "tgi", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct"}),
]
