"""A pickle that runs code when it is loaded: what a file from elsewhere must never do."""

from __future__ import annotations

import pickle
from pathlib import Path


class Payload:
    """Unpickling it creates the file `marker` (it stands for any code a pickle can run)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def payload_bytes(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker))
