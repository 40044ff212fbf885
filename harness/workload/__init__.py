"""The workload: what each request asks for, built before the load starts. Token-length
distributions (`lengths`), prompts with exact token counts (`prompts`), multi-turn sessions
(`sessions`) and a load point's request pool (`request_pool`).
"""
