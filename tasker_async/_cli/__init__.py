"""The command line's durable commands: ``worker``, ``status`` and ``demo --durable``.

Wired into ``python -m tasker_async`` by ``tasker_async.__main__``; each command's module
runs it and returns the exit code.
"""
