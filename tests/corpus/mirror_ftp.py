"""A pip mirror over FTP: pip reads indexes over HTTP(S)."""

servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "mirror": {"pip_index_url": "ftp://mirror.example.com/simple"},
        },
    ),
]
