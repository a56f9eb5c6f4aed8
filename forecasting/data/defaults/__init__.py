"""Defaults shipped with ciplan (package data): the settlement-record mapping."""
