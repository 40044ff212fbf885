"""Libraries for your own test suites, not a stage of patternbench's pipeline: `loopcheck`
checks that an ASGI app's event loop stays free while it streams (docs/loopcheck.md).
"""
