"""``edgecnn serve``: the HTTP side of a model or a station (``pip install 'edgecnn[serve]'``).

Modules (each imported on use; a plain ``edgecnn run`` imports none of them):

- :mod:`.config`: :class:`~edgecnn.serve.config.ServeConfig`, the options of ``edgecnn serve`` and of a station
  file's ``serve`` section (pure Python; the station file's validation is derived from its field metadata).
- :mod:`.handle`: :class:`~edgecnn.serve.handle.StationHandle`, what the server reads from a running station.
- :mod:`.http`: the reusable HTTP pieces (JSON errors, bearer auth, bind safety, a uvicorn server to start and stop)
  that the review page of :mod:`edgecnn.monitor` shares.
- :mod:`.batching`: the dynamic batcher behind ``POST /predict``; :mod:`.inputs`: what a request may carry.
- :mod:`.live`: the live view's observer (newest annotated JPEG per source, recent decisions); :mod:`.feed`: a
  source classified by a Pipeline as a small station (``edgecnn serve MODEL --source ...``).
- :mod:`.metrics`: ``/metrics`` (prometheus-client, its own registry); :mod:`.app`: the routes; :mod:`.server`:
  :func:`~edgecnn.serve.server.serve`, what the CLI calls.

The HTTP stack is Starlette + uvicorn + prometheus-client (+ python-multipart): the README's "Serve" section says
why and what it measured against the standard library's ``http.server``.
"""
