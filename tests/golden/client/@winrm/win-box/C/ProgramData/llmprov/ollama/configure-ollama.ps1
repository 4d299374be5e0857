# Configure Ollama 0.12.6 on @winrm/win-box: machine-level settings and the firewall.
# The service reads its own settings from its WinSW definition; llmprov restarts it after this.
# Rendered by llmprov 0.0.0+golden; changes here are overwritten on deploy.
$ErrorActionPreference = 'Stop'
[Environment]::SetEnvironmentVariable('OLLAMA_HOST', '0.0.0.0:11434', 'Machine')
[Environment]::SetEnvironmentVariable('OLLAMA_MODELS', 'C:/ProgramData/llmprov/ollama/models', 'Machine')
[Environment]::SetEnvironmentVariable('OLLAMA_KV_CACHE_TYPE', 'q8_0', 'Machine')
[Environment]::SetEnvironmentVariable('OLLAMA_FLASH_ATTENTION', '1', 'Machine')
[Environment]::SetEnvironmentVariable('OLLAMA_NUM_PARALLEL', $null, 'Machine')
[Environment]::SetEnvironmentVariable('OLLAMA_MAX_LOADED_MODELS', $null, 'Machine')
[Environment]::SetEnvironmentVariable('OLLAMA_KEEP_ALIVE', $null, 'Machine')
[Environment]::SetEnvironmentVariable('OLLAMA_MAX_QUEUE', $null, 'Machine')
[Environment]::SetEnvironmentVariable('OLLAMA_CONTEXT_LENGTH', $null, 'Machine')
Remove-NetFirewallRule -Name 'llmprov-ollama' -ErrorAction SilentlyContinue
New-NetFirewallRule -Name 'llmprov-ollama' -DisplayName 'Ollama (llmprov)' -Direction Inbound -Protocol TCP -LocalPort 11434 -RemoteAddress '10.0.10.0/24' -Action Allow | Out-Null
