"""Onto a box with no network: offline bundles, their installer, and the releases it keeps.

* :mod:`.bundle` — ``edgecnn bundle``: SOURCE + TARGET → one tar.gz (wheels, model, golden set, unit, installer,
  signed manifest); :mod:`.wheels` finds the target's wheels, :mod:`.keys` makes and uses signing keys.
* :mod:`.installer`, :mod:`.releases`, :mod:`.ed25519` — the box side, standard library only, shipped inside every
  bundle: verify, build the release's venv offline, self-check, switch ``current`` atomically, roll back, prune.
* :mod:`.selfcheck` — the on-box self-check, run by the installer inside the new release's venv.
"""
