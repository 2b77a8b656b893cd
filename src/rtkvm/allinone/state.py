"""The all-in-one state directory: where ``rtkvm up`` keeps what must survive ``rtkvm down``.

Layout (default /var/lib/rtkvm/allinone): ``rtkvm.db`` (SQLite), ``admin.token``
and ``agent.token`` (mode 0600, written once, never rewritten in place unless the
agent token is no longer known to the API), ``plan.json`` (the host's partition
plan), ``allinone.json`` (port, host name and TLS choice of the last ``up``),
``api.crt`` and ``api.key`` (with ``--tls``: the API's self-signed pair, key 0600),
and per process ``NAME.pid`` and ``NAME.log``. This module only reads and writes files in that
directory: it must not start processes or talk to the API.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rtkvm.errors import AllInOneError, InputError
from rtkvm.footprint import ALLINONE_DIR
from rtkvm.wire.secrets import new_secret

DEFAULT_STATE_DIR = Path(ALLINONE_DIR.path)
DEFAULT_PORT = 8754


LISTEN_HOST = "127.0.0.1"
"""The all-in-one API listens on loopback only."""


@dataclass(frozen=True)
class Config:
    """What the last ``rtkvm up`` chose: the API's port, this host's name, HTTPS or not."""

    port: int
    host: str
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LISTEN_HOST}:{self.port}"


class StateDir:
    """Paths and files of one all-in-one installation."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()

    @property
    def database(self) -> Path:
        return self.root / "rtkvm.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database}"

    @property
    def admin_token_file(self) -> Path:
        return self.root / "admin.token"

    @property
    def agent_token_file(self) -> Path:
        return self.root / "agent.token"

    @property
    def plan_file(self) -> Path:
        return self.root / "plan.json"

    @property
    def tls_cert_file(self) -> Path:
        return self.root / "api.crt"

    @property
    def tls_key_file(self) -> Path:
        return self.root / "api.key"

    def ca_file(self, config: Config) -> str | None:
        """What clients verify the API against: its self-signed certificate (None: HTTP)."""
        return str(self.tls_cert_file) if config.tls else None

    @property
    def config_file(self) -> Path:
        return self.root / "allinone.json"

    def pid_file(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def exists(self) -> bool:
        return self.root.is_dir()

    def create(self) -> None:
        """Create the directory (mode 0700: it holds secrets); an existing one is kept."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create the state directory {self.root}: {exc.strerror or exc}; "
                "choose another with --state-dir"
            ) from None
        if not os.access(self.root, os.W_OK):
            raise InputError(f"{self.root} is not writable: choose another with --state-dir")

    # -- secrets ---------------------------------------------------------------------

    def admin_token(self) -> str:
        """The admin token, generated on first use and kept (mode 0600)."""
        existing = self.read_secret(self.admin_token_file)
        if existing is not None:
            return existing
        secret = new_secret()
        self.write_secret(self.admin_token_file, secret)
        return secret

    def read_secret(self, path: Path) -> str | None:
        """A stored token, or None when there is none; a readable-by-others file is refused."""
        try:
            mode = path.stat().st_mode & 0o777
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if mode & 0o077:
            raise InputError(
                f"{path} has mode {mode:04o}: a token must be private, run `chmod 600 {path}`"
            )
        return text or None

    def write_secret(self, path: Path, secret: str) -> None:
        """Write a token with mode 0600 (replacing any old file atomically)."""
        tmp = path.with_name(path.name + ".new")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secret + "\n")
        tmp.replace(path)

    # -- config ------------------------------------------------------------------------

    def config(self) -> Config | None:
        try:
            data = json.loads(self.config_file.read_text(encoding="utf-8"))
            tls = data.get("tls", False)
            if not isinstance(tls, bool):
                raise ValueError(f"tls is {tls!r}, not true or false")
            return Config(port=int(data["port"]), host=str(data["host"]), tls=tls)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{self.config_file} is damaged ({exc}): remove it, `rtkvm up` writes it again"
            ) from None

    def save_config(self, config: Config) -> None:
        fields = {"port": config.port, "host": config.host, "tls": config.tls}
        text = json.dumps(fields, indent=2) + "\n"
        tmp = self.config_file.with_name(self.config_file.name + ".new")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.config_file)

    def purge(self, *, tries: int = 10, pause_s: float = 0.3) -> None:
        """Remove the whole directory (database, tokens, logs). A process that just
        stopped may still be closing a file in it (SQLite's -wal and -shm files): a
        removal that raced one is tried again before it fails, saying what was left."""
        for attempt in range(tries):
            try:
                shutil.rmtree(self.root)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if attempt == tries - 1:
                    left = sorted(p.name for p in self.root.glob("*")) if self.root.exists() else []
                    raise AllInOneError(
                        f"cannot remove the state directory {self.root}: {exc}; left: {left}"
                    ) from None
                time.sleep(pause_s)
