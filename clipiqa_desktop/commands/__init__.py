"""One module per headless command; each adds its sub-parser and a `run(args) -> exit code`."""
