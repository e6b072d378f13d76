"""What the benchmarks share: the app on a prepared database, and a timer of module functions."""

from __future__ import annotations

import functools
import time
from collections import Counter

from servicehub import create_app


def make_app(url: str, directory: str, **config):
    """The app on a given database, as the command line would run it (its instance folder holds the data key
    the district is encrypted with)."""
    return create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                       "INSTANCE_PATH": directory, **config})


class Timer:
    """Wraps module functions for the duration of a block and adds up the seconds and calls of each."""

    def __init__(self, *targets: tuple[object, str]) -> None:
        self.targets, self.seconds, self.calls, self._undo = targets, Counter(), Counter(), []

    def __enter__(self) -> Timer:
        for owner, name in self.targets:
            original = getattr(owner, name)

            @functools.wraps(original)
            def timed(*args, _original=original, _name=name, **kwargs):
                started = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.seconds[_name] += time.perf_counter() - started
                    self.calls[_name] += 1

            self._undo.append((owner, name, original))
            setattr(owner, name, timed)
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)

    def rounded(self) -> dict:
        """Seconds per function, to a tenth."""
        return {name: round(s, 1) for name, s in self.seconds.items()}
