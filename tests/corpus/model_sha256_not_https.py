"""A checksum given for a model that is not downloaded over https: it would never be checked."""

hosts = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "model_sha256": "0" * 64,
        },
    ),
]
