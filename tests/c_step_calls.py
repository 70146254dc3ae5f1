"""The C training step's calls, seen by the tests that must know it ran, and with which arguments."""

from __future__ import annotations

from typing import Any

from deltaprop import native


def record_c_steps(monkeypatch: Any) -> list[tuple[Any, ...]]:
    """For the rest of the test, every call of ``deltaprop._ckernels.sgd_step`` goes on to the real function and its
    arguments into the list returned (the extension's other functions are untouched)."""
    calls: list[tuple[Any, ...]] = []
    c = native._c

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(c, name)

        def sgd_step(self, *args: Any) -> Any:
            calls.append(args)
            return c.sgd_step(*args)

    monkeypatch.setattr(native, "_c", Recording())
    return calls


def threads_asked(calls: list[tuple[Any, ...]]) -> set[int]:
    """The thread counts those calls asked for (the 17th argument; 1 where it was left out)."""
    return {args[16] if len(args) > 16 else 1 for args in calls}
