"""Running the monitor and its web app together: the socket is bound first (a taken port fails before
any model loads), the token rule is checked before that, and stopping ends the cameras' streams so that
open events close and are announced."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from damvad.serve.alerts import Backoff
from damvad.serve.config import ServeConfig, is_loopback

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Server:
    """``damvad serve``: :meth:`run` blocks (the command), :meth:`start` / :meth:`stop` run it in a thread."""

    def __init__(self, cfg: ServeConfig, i3d: Any = None, backoff: Backoff | None = None):
        import uvicorn

        from damvad.serve.app import build_app
        from damvad.serve.monitor import Monitor

        token = cfg.access_token()  # refuses a non-loopback host without a token, before anything else
        self.sock = bind(cfg.host, cfg.port)
        try:
            self.monitor = Monitor(cfg, i3d, backoff)
        except BaseException:
            self.sock.close()
            raise
        self.host, self.port = cfg.host, self.sock.getsockname()[1]
        shown = f"[{cfg.host.strip('[]')}]" if ":" in cfg.host else cfg.host
        self.url = f"http://{shown}:{self.port}"
        app = build_app(self.monitor, token, loopback_only=is_loopback(cfg.host))
        self.uvicorn = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C / SIGTERM), then stop everything (the cameras' open events close
        and are announced). uvicorn shuts down on either signal and raises it again once done: SIGTERM is
        turned into KeyboardInterrupt here, so that the monitor still stops rather than the process dying."""
        from damvad.utils import sigterm_as_interrupt

        with sigterm_as_interrupt():
            self.monitor.start()
            try:
                self.uvicorn.run(sockets=[self.sock])
            finally:
                self.monitor.stop()
                self.sock.close()

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.run, name="damvad-server", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
