"""The data stages before the palette: cross-checks, split, resize, grayscale (never K-means code, never Keras)."""
