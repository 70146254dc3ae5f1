"""``deltaprop explore``: a local web page to step through backpropagation and watch a network train.

Pick the seed's 2-2-2 worked example, the one-weight example, or build a small network on XOR, moons, circles,
spirals or your own CSV file; step through one backpropagation step number by number (each with the formula that
produced it), train continuously and watch the loss, the decision regions and the weights change. Every number
comes from the library through the server's JSON API; the page only draws. See ``docs/explorer.md``.

Needs the extra ``[explore]`` (Starlette and uvicorn)::

    pip install "deltaprop[explore]"
    deltaprop explore            # or: python -m deltaprop.explore

>>> from deltaprop.explore import engine
>>> engine.LIMITS["max_units"], engine.LIMITS["max_upload_bytes"]
(64, 2097152)
"""

from __future__ import annotations

import sys
import threading
import webbrowser
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import ExplorerServer

__all__ = ["main", "create_app", "ExplorerServer"]


def create_app(*, port: int, host: str = "127.0.0.1") -> Any:
    """The explorer as an ASGI application (Starlette) that answers requests for ``host``/loopback at ``port``."""
    from .server import create_app as _create_app

    return _create_app(port=port, host=host)


def __getattr__(name: str) -> Any:
    if name == "ExplorerServer":
        from .server import ExplorerServer

        return ExplorerServer
    raise AttributeError(f"module 'deltaprop.explore' has no attribute {name!r}")


def main(host: str = "127.0.0.1", port: int = 0, open_browser: bool = True) -> int:
    """Serve the explorer until Ctrl+C; print its address and (by default) open it in the web browser.

    ``port=0`` picks a free port. Binding to another address than loopback makes the page reachable from the
    network (it still answers only requests addressed to that host and port): do so only on a network you trust.
    Raises ``MissingExtraError`` (an ImportError naming ``pip install "deltaprop[explore]"``) without the extra,
    and ``OSError`` when the address cannot be bound.
    """
    from .server import ExplorerServer

    server = ExplorerServer(host=host, port=port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(f"deltaprop explore: warning: listening on {host}, not only on this computer (127.0.0.1)\n")
    sys.stdout.write(f"deltaprop explorer: {server.url}  (press Ctrl+C to stop)\n")
    sys.stdout.flush()
    if open_browser:
        timer = threading.Timer(0.5, webbrowser.open, args=(server.url,))
        timer.daemon = True
        timer.start()
    try:
        server.serve()
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles Ctrl+C itself on the main thread
        pass
    sys.stdout.write("deltaprop explorer: stopped\n")
    return 0
