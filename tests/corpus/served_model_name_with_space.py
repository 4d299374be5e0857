"""A served model name with a space: clients would have to quote it in every request."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "served_model_name": "my model",
        },
    ),
]
