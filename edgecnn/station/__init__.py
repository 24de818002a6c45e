"""The station: one station file resolved into an immutable plan, run by an engine that decides and acts.

Modules (each imported on use; a plain ``edgecnn run`` imports none of them):

- :mod:`edgecnn.station.events`: the data that flows from the engine to outputs and observers (the contract).
"""
