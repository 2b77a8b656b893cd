"""All-in-one: the API server and this host's agent on one machine, SQLite, one state directory.

:mod:`.state` holds the directory (database, tokens, plan, pid and log files),
:mod:`.procs` starts, finds and stops the two background processes, and
:mod:`.stack` puts them together for ``rtkvm up``, ``rtkvm down`` and
``rtkvm status``. Nothing here prints: the CLI (``rtkvm.cli.up``) does.
"""
