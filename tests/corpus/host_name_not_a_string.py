"""A host given as a number, and a group whose hosts are not a list."""

servers = [
    (1, {"engine": "ollama", "model": "ollama://llama3.2:3b"}),
]
others = ({"edge-1": {}}, {})
