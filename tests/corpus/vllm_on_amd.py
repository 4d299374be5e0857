"""vLLM on AMD GPUs: llmprov builds vLLM for NVIDIA and the CPU."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "gpu": {"vendor": "amd", "count": 1},
        },
    ),
]
