"""Submit, DAG and config templates shipped with condorcof (loaded with importlib.resources)."""
