"""The palette stage (K-means) and the encode stage (pixel -> nearest palette index)."""
