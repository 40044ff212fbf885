"""`python -m harness.cli`: the same as the `patternbench` command."""

from harness.cli.main import main

raise SystemExit(main())
