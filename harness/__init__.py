"""patternbench harness: scenario → arrivals → drivers → samples → metrics → report → gate."""

__version__ = "0.1.0"
