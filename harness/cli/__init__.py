"""The `patternbench` command line: argument parsing and wiring only (`main`; the report-side
subcommands in `reports`). No stage reads command-line arguments.
"""
