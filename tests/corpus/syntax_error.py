"""A missing comma between two keys: Python cannot parse the file."""

servers = [
    (
        "gpu-1",
        {
            "engine": "vllm"
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
        },
    ),
]
