"""llama-server under systemd: on the CPU behind a key on IPv6 loopback, and with one NVIDIA GPU."""

servers = [
    (
        "cpu",
        {
            "engine": "llamacpp",
            "model": "https://models.example.com/smollm2-135m-instruct-q4_k_m.gguf#sha256=6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e",
            "bind": "::1",
            "api_key_file": "_files/api-key.txt",
            "llamacpp": {"parallel": 2, "ctx_size": 8192, "extra_args": ["--cache-reuse", "256"]},
        },
    ),
    (
        "gpu",
        {
            "engine": "llamacpp",
            "model": "hf://bartowski/Llama-3.2-3B-Instruct-GGUF/Llama-3.2-3B-Instruct-Q4_K_M.gguf",
            "gpu": {"vendor": "nvidia", "count": 1},
            # The digest is a stand-in: rendering downloads nothing, and it is not the archive's.
            "llamacpp": {
                "source": "upstream",
                "release": "b6710",
                "release_sha256": "0000000000000000000000000000000000000000000000000000000000000000",
            },
        },
    ),
]
