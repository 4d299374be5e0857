"""llama-server on a Mac under launchd."""

macs = [
    (
        "mac",
        {
            "os": "macos",
            "arch": "aarch64",
            "engine": "llamacpp",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "llamacpp": {"parallel": 2, "ctx_size": 8192},
        },
    ),
]
