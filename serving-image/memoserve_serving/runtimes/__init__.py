"""Model runtimes: one small class per framework behind :class:`~.base.Model`."""
