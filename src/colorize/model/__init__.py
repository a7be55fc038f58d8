"""The train stage: Keras backend, architectures, training loop, class rebalancing, the model bundle."""
