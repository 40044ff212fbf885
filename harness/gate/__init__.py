"""Regression gates: declarative checks of a run's summary (`spec`), their pure decisions
(`check`), baselines (`baseline`), the written verdicts (`outputs`) and the command (`command`)."""
