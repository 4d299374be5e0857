"""An API key file that is not text."""

servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "api_key_file": "files/binary.bin",
        },
    ),
]
