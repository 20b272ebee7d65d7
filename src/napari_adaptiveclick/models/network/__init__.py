"""AdaptiveClick network components (torch only). Build them through :mod:`registry`."""
