"""vLLM in Docker Compose: the CUDA image on two GPUs behind a key, and the CPU image."""

servers = [
    (
        "gpu",
        {
            "engine": "vllm",
            "runtime": "compose",
            "model": "hf://Qwen/Qwen2.5-7B-Instruct",
            "served_model_name": "qwen2.5-7b",
            "bind": "0.0.0.0",
            "api_key_file": "_files/api-key.txt",
            "gpu": {"vendor": "nvidia", "count": 2},
            "vllm": {"version": "0.10.2", "max_model_len": 16384},
        },
    ),
    (
        "cpu",
        {
            "engine": "vllm",
            "runtime": "compose",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "vllm": {"version": "0.32.0"},
        },
    ),
]
