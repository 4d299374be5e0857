"""A mirror URL with user:password, which would reach a command line."""

servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "mirror": {"pip_index_url": "https://user:secret@pypi.example.com/simple"},
        },
    ),
]
