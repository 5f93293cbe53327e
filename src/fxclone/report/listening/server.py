"""The stdlib HTTP server behind a listening-test session (127.0.0.1 only)."""

from __future__ import annotations

import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from fxclone.errors import FxcloneError
from fxclone.report.listening.abx import AbxSession
from fxclone.report.listening.common import MAX_POST_BYTES
from fxclone.report.listening.mushra import MushraSession

# ----------------------------------------------------------------------------- server


def _handler(session: AbxSession | MushraSession) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # the console belongs to the CLI's own messages

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/":
                with session.lock:
                    page, finished = session.page(), session.finished
                self._send(200, page.encode(), "text/html; charset=utf-8")
                if finished:
                    session.end_page_served.set()
            elif self.path.startswith("/audio/"):
                data = session.audio_for(self.path[len("/audio/") :])
                if data is None:
                    self._send(404, b"no such audio", "text/plain")
                else:
                    self._send(200, data, "audio/wav")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            if self.path != "/submit" or not 0 <= length <= MAX_POST_BYTES:
                self._send(400, b"bad request", "text/plain")
                return
            raw = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            form = {k: v[-1] for k, v in raw.items()}
            try:
                with session.lock:
                    session.submit(form)
            except (KeyError, ValueError) as exc:
                self._send(400, f"bad form: {exc}".encode(), "text/plain")
                return
            self.send_response(303)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def start_server(
    session: AbxSession | MushraSession, port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``session`` on 127.0.0.1 in a daemon thread; return ``(server, url)``.

    ``port=0`` picks a free port. Stop with ``server.shutdown(); server.server_close()``.
    """
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(session))
    except OSError as exc:
        raise FxcloneError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pass another port or 0"
        ) from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="listening-test").start()
    session.server_url = f"http://127.0.0.1:{server.server_address[1]}/"
    return server, session.server_url


def serve(
    session: AbxSession | MushraSession, port: int = 0, open_browser: bool = True
) -> dict | None:
    """Run a listening test until its end page is shown or Ctrl-C; return the summary."""
    server, url = start_server(session, port)
    print(f"Listening test at {url} (results go to {session.out_json}; Ctrl-C stops it)")
    try:
        if open_browser:
            webbrowser.open(url)
        while not session.end_page_served.wait(0.5):
            pass
    except KeyboardInterrupt:
        print(f"Stopped; answers so far are in {session.out_json}, run again to resume")
    finally:
        server.shutdown()
        server.server_close()
    return session.summary()
