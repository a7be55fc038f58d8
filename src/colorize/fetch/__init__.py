"""The fetch stage: sources (folder, archive, URL, manifest, cloud, built-in set), downloads,
ingestion into tar shards."""
