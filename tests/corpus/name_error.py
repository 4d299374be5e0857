"""A name used before it is defined: the file runs and raises NameError."""

servers = [
    ("gpu-1", {"engine": "vllm", "model": MODEL}),
]

MODEL = "hf://Qwen/Qwen2.5-0.5B-Instruct"
