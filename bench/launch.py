"""``retbench app``: the inspection app from the installed package, from any folder.

The same app as ``make run``: the demo is built first (once; it is cached), then
Streamlit runs the router with the project's server settings (headless, loopback by
default, no usage statistics, the viewer toolbar). Never imports streamlit itself: it
starts ``python -m streamlit run`` in this interpreter, so the app runs in the
environment the package is installed in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_PKG = Path(__file__).resolve().parent

#: Server settings of every launch (the checkout's .streamlit/config.toml says the same).
SERVER_FLAGS = ("--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--client.toolbarMode", "viewer", "--client.showErrorDetails", "type",
                "--client.showSidebarNavigation", "false")


def app_script() -> Path:
    """The main script: ``bench/app/streamlit_app.py`` in an installed package (its
    ``pages/`` beside it), ``app.py`` of the checkout in an editable install (where
    ``pages/`` is the checkout's top-level folder)."""
    installed = _PKG / "app" / "streamlit_app.py"
    if (installed.parent / "pages").is_dir():
        return installed
    checkout = _PKG.parent / "app.py"
    if checkout.is_file() and (checkout.parent / "pages").is_dir():
        return checkout
    raise FileNotFoundError(f"no app pages found beside {installed} or {checkout}")


def app_command(*, port: int = 8501, address: str = "127.0.0.1",
                data_roots: Sequence[str | os.PathLike] = (),
                extra: Sequence[str] = ()) -> list[str]:
    """The command line that serves the app (for tests and for ``--print``)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_script()),
           "--server.port", str(port), "--server.address", address, *SERVER_FLAGS, *extra]
    roots = [a for d in data_roots for a in ("--data-root", str(Path(d).expanduser()))]
    return cmd + (["--", *roots] if roots else [])


def launch_app(*, port: int = 8501, address: str = "127.0.0.1",
               data_roots: Sequence[str | os.PathLike] = (), build_demo: bool = True,
               print_only: bool = False) -> int:
    """Build the demo (unless told not to), then run the app until it is stopped."""
    cmd = app_command(port=port, address=address, data_roots=data_roots)
    if print_only:
        print(" ".join(cmd))
        return 0
    if build_demo:
        from bench.demo import build_demo as _build

        print("preparing the demo benchmark (built once, then cached) ...", file=sys.stderr)
        _build()
    where = "the network" if address in ("0.0.0.0", "::") else address
    print(f"serving the app on {where}, port {port}: http://{address}:{port}/ "
          "(Ctrl+C stops it)", file=sys.stderr)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


__all__ = ["SERVER_FLAGS", "app_command", "app_script", "launch_app"]
