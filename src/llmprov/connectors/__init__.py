"""pyinfra connectors llmprov adds: `@winrm` for Windows hosts (registered as a pyinfra entry point)."""
