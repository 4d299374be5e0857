"""An API key for Ollama, which has no API key support (the key file itself is fine)."""

servers = [
    (
        "edge-1",
        {"engine": "ollama", "model": "ollama://llama3.2:3b", "api_key_file": "files/api-key.txt"},
    ),
]
