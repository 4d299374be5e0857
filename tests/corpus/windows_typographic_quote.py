"""A Windows models folder with a typographic quote, which ends a PowerShell string."""

windows = [
    (
        "@winrm/win-box",
        {
            "os": "windows",
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "ollama": {"models_dir": "C:\\models\u2019; Remove-Item C:\\ -Recurse; \u2019"},
        },
    ),
]
