"""An API key file holding a Unicode line separator."""

servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "api_key_file": "files/line-separator.txt",
        },
    ),
]
