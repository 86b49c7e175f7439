"""The training host service: an HTTP layer over the engine's session runtime."""

__version__ = "0.1.0"

__all__ = ["__version__"]
