"""Learn to colorize grayscale images as per-pixel classification over a K-means palette.

The data modules (transforms, palette, splitting, ingestion, metrics) never import Keras; only the model,
training, evaluation and command-line modules do.
"""

__version__ = "0.1.0"
