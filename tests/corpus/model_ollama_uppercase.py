"""An Ollama model name in capitals; Ollama names are lower case."""

servers = [
    ("edge-1", {"engine": "ollama", "model": "ollama://Llama3.2:3b"}),
]
