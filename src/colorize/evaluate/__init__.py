"""The evaluate stage: decodings, metrics, baselines, the headline numbers, the second source."""
