"""``python -m deltaprop.explore [--host H] [--port P] [--no-browser]``: the explorer without the CLI."""

from __future__ import annotations

import argparse
import sys

from . import main


def _run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deltaprop.explore", description="Serve the deltaprop explorer.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    args = parser.parse_args(argv)
    try:
        return main(host=args.host, port=args.port, open_browser=not args.no_browser)
    except (ImportError, OSError, ValueError) as exc:
        sys.stderr.write(f"deltaprop explore: error: {exc}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_run())
