"""vLLM on a Mac: llmprov deploys vLLM on Linux only."""

macs = [
    (
        "mac-studio",
        {
            "os": "macos",
            "arch": "aarch64",
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
        },
    ),
]
