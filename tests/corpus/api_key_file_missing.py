"""An API key file that does not exist next to the inventory."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "bind": "0.0.0.0",
            "api_key_file": "files/no-such-key.txt",
        },
    ),
]
