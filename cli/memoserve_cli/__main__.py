"""``python -m memoserve_cli``: the ``memoserve`` command (how ``memoserve run`` starts the
model tier of a split service as a process of its own)."""

from memoserve_cli.main import main

main()
