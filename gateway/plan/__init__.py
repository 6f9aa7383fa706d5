"""`modelgate policy plan`: recorded traffic replayed through two policy revisions.

trace.py reads the traffic, replay.py runs one policy over it, counting as the live limiter
counts (counters.py),
compare.py runs OLD and NEW side by side, render.py writes Markdown or JSON, cli.py is the
subcommand.
"""
