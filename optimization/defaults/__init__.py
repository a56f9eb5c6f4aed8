"""Defaults shipped with ciplan (package data): the plan space."""
