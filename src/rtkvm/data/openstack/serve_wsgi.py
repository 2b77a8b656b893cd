# Run by the all-in-one's OpenStack virtualenv (not by rtkvm's): serve one OpenStack WSGI
# application with gunicorn on 127.0.0.1. Arguments: MODULE:ATTR ENV_NAME CONFIG_DIR PORT NAME.
# The applications parse sys.argv as their own command line, so it is emptied before they
# are imported (gunicorn's arguments would kill them at start, and the worker would respawn
# for ever); their configuration directory comes from the environment variable they read.
import importlib
import os
import sys

spec, env_name, conf_dir, port, name = sys.argv[1:6]
os.environ[env_name] = conf_dir
sys.argv = [name]

from gunicorn.app.base import BaseApplication  # noqa: E402


class Service(BaseApplication):  # type: ignore[misc]
    def load_config(self) -> None:
        for key, value in {
            "bind": f"127.0.0.1:{port}",
            "workers": 1,
            "threads": 8,
            "worker_class": "gthread",
            "timeout": 300,
            "graceful_timeout": 5,
            "proc_name": name,
            "control_socket_disable": True,
        }.items():
            self.cfg.set(key, value)

    def load(self) -> object:
        module, attr = spec.split(":")
        return getattr(importlib.import_module(module), attr)


Service().run()
