"""pyinfra deploys: facts plus a validated config become operations."""
