"""A host name that looks like rich console markup."""

servers = [
    ("[bold red]edge-1[/]", {"engine": "ollama", "model": "ollama://llama3.2:3b"}),
]
