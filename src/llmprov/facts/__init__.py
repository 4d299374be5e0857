"""pyinfra facts that read host state."""
