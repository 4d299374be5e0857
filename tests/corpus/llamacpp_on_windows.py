"""llama.cpp on a Windows host: llmprov serves Windows with Ollama."""

windows = [
    (
        "win-box",
        {
            "winrm_hostname": "10.0.10.50",
            "os": "windows",
            "engine": "llamacpp",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
        },
    ),
]
