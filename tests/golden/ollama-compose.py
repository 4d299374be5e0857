"""Ollama in Docker Compose: on the CPU, and with one NVIDIA GPU."""

servers = [
    ("cpu", {"engine": "ollama", "runtime": "compose", "model": "ollama://llama3.2:1b"}),
    (
        "gpu",
        {
            "engine": "ollama",
            "runtime": "compose",
            "model": "ollama://qwen2.5:7b",
            "gpu": {"vendor": "nvidia", "count": 1},
            "ollama": {"version": "0.12.3", "flash_attention": True, "num_parallel": 2},
        },
    ),
]
