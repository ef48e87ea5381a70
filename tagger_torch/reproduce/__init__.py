"""`tagger-torch reproduce`: the runs behind the paper's tables as one resumable plan.

plan.py (the runs, as data), state.py (where each stands, from its files), runner.py (train, score,
publish), table2.py (Table 2's files and README). docs/reproduce.md describes the command.
"""
