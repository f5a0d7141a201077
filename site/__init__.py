"""Site profiles shipped with condorcof (loaded with importlib.resources)."""
