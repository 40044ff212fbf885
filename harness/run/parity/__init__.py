"""`patternbench parity URL`: patternbench's own driver against the field's benchmark clients.

One server, one open-loop Poisson load (rate, request count, prompt and output lengths), run by
patternbench's builtin driver and by each external client that is installed — `vllm bench serve`
(`.venv-vllm`), GuideLLM (`.venv-guidellm`), AIPerf (`.venv-aiperf`) — alternated round by round
(A B C A B C …), so the machine's drift lands on every client alike. Each leg's numbers are read
from the client's own result file under its own metric names (`clients.py` maps them); the table
gives each client's median over the rounds, its spread, and patternbench's difference from the
external clients' median.

    load.py      what every client is asked to send (`ParityLoad`) and what a leg measured (`Leg`)
    clients.py   the clients: how each is started, and its result file read into a `Leg`
    check.py     the alternation, the record (parity.json) and the table (parity.md)
"""
