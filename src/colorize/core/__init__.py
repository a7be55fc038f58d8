"""Shared by every stage and the app: atomic artifacts, the sharded array format, params, errors,
scratch space, colour maths."""
