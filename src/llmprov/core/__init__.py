"""Pure logic: config models, matrices, model references, rendering, parsers. No I/O, no pyinfra."""
