"""One module per subcommand: each defines ``register(subparsers)`` returning the parser, and ``run(args) -> int``."""
