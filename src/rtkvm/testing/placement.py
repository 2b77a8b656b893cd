"""The real OpenStack Placement for tests and benchmarks: pinned, on a throw-away database.

:class:`PlacementService` runs ``openstack-placement`` at the version rtkvm pins
(its own virtualenv, ``rtkvm.openstack.venvs``) on a new database of a
:class:`~rtkvm.db.pgtest.PostgresServer`, behind ``wsgiref`` with Placement's
``noauth2`` (token ``admin``), after ``placement-manage db sync``. ``stop()``
ends it and removes its files. Nothing here may be imported by production code.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from rtkvm.db.pgtest import PostgresServer
from rtkvm.openstack.venvs import ensure_venv, venv_spec
from rtkvm.testing.apiproc import free_port

TOKEN = "admin"
"""noauth2: a token naming the user 'admin' is an admin."""

RUNNER = """
import os, sys
os.environ["OS_PLACEMENT_CONFIG_DIR"] = sys.argv[1]
from wsgiref.simple_server import WSGIRequestHandler, make_server
from placement.wsgi import api

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

make_server("127.0.0.1", int(sys.argv[2]), api.application, handler_class=Quiet).serve_forever()
"""


class PlacementService:
    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.venv = ensure_venv("placement")
        self.version = venv_spec("placement").services[0].version
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = Path(tempfile.mkdtemp(prefix="rtkvm-placement-"))
        self.db_url = ""
        self.endpoint = ""

    def start(self, label: str = "t") -> PlacementService:
        """A new database, its schema, and the service answering on a free port."""
        self.db_url = self.server.new_database(f"placement_{label}_")
        connection = self.db_url.replace("postgresql+psycopg://", "postgresql+psycopg2://")
        conf_file = self.conf / "placement.conf"
        conf_file.write_text(
            f"[api]\nauth_strategy = noauth2\n[placement_database]\nconnection = {connection}\n"
        )
        (self.conf / "run.py").write_text(RUNNER)
        sync = subprocess.run(
            [str(self.venv / "bin" / "placement-manage"), "--config-file", str(conf_file),
             "db", "sync"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if sync.returncode != 0:
            raise RuntimeError(f"placement-manage db sync failed: {sync.stderr[-2000:]}")
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        log = self.conf / "placement.log"
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "python"), str(self.conf / "run.py"), str(self.conf),
             str(port)],
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(self.endpoint + "/", method="GET")
                with urllib.request.urlopen(request, timeout=5):
                    return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    tail = log.read_text()[-2000:]
                    self.stop()
                    raise RuntimeError(f"Placement did not start: {tail}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None
        shutil.rmtree(self.conf, ignore_errors=True)
