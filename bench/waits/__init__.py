"""The waiting benchmark: long polls and event streams held by the thousand (issue 19).

Run as `python -m bench.waits` (`make bench-waits`); see bench/README.md.
"""
