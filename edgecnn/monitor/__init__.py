"""Monitoring on the station: drift and camera health, capture of doubtful frames, and the review page."""
