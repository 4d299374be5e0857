"""An API key for llama-server on a Mac: launchd has nowhere safe to hold it, so it would be dropped."""

macs = [
    (
        "mac-mini",
        {
            "os": "macos",
            "arch": "aarch64",
            "engine": "llamacpp",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "bind": "0.0.0.0",
            "api_key_file": "files/api-key.txt",
        },
    ),
]
