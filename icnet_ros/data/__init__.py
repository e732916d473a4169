"""Data files shipped inside the package (the demo weights)."""
