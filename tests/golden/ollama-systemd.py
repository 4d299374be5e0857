"""Ollama under systemd on Linux: on the CPU with defaults, and with NVIDIA GPUs and tuning."""

servers = [
    ("cpu", {"engine": "ollama", "model": "ollama://llama3.2:3b"}),
    (
        "gpu",
        {
            "engine": "ollama",
            "model": "ollama://qwen2.5:7b",
            "bind": "0.0.0.0",
            "expose_unauthenticated": True,
            "allow_from": ["10.0.0.0/8"],
            "port": 11500,
            "gpu": {"vendor": "nvidia", "count": 2},
            "ollama": {
                "num_parallel": 4,
                "max_loaded_models": 2,
                "keep_alive": "1h30m",
                "max_queue": 128,
                "flash_attention": True,
                "kv_cache_type": "q4_0",
                "context_length": 8192,
                "models_dir": "/srv/ollama/models",
            },
        },
    ),
]
