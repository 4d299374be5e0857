"""Host names that would write outside --out: a parent folder and an absolute path."""

servers = [
    ("../../etc", {"engine": "ollama", "model": "ollama://llama3.2:3b"}),
    ("/etc/cron.d", {"engine": "ollama", "model": "ollama://llama3.2:3b"}),
]
