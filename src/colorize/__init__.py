"""Learn to colorize grayscale images as per-pixel classification over a K-means palette.

One subpackage per part of the pipeline (dvc.yaml lists the ones each stage uses): core (shared by all),
fetch, prep (validate, split, resize, grayscale), quantize (palette, encode), model (train), evaluate, and
app (the `colorize` command). core, fetch, prep and quantize never import Keras; model, evaluate and app do.
"""

__version__ = "0.1.0"
