"""The `colorize` command: recolor images with a trained bundle."""
