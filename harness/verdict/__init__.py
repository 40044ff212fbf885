"""The verdict: sentences computed from a run's summary, each linked to its evidence.
`ranking` ranks the targets by capacity under the SLO, `causes` says why a pattern loses,
`caveats` what to keep in mind, `text` writes levels and numbers, `anchors` names the report
sections the sentences link to.
"""
