"""Tensor parallelism on a host without GPUs."""

servers = [
    (
        "cpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "vllm": {"tensor_parallel_size": 2},
        },
    ),
]
