"""Session runtime shared by the host service and the proxy fallback; see ``types``."""
