"""Procedural street scenes with labels, shared by training, sample bags and the instruments."""
