"""snowvault: a self-hosted backup service that speaks the AWS Backup API.

The extension API (``POST /_snowvault/v1/<Action>``) ships as a botocore service model
under ``snowvault/data``; :func:`client` returns a boto3 client for it::

    sv = snowvault.client(endpoint_url="http://127.0.0.1:8080", region_name="us-east-1")
    sv.register_resource(ResourceType="Directory", Name="docs", Source="/srv/docs")

Importing this package stays cheap: boto3 loads only when :func:`client` is called.
"""

from __future__ import annotations

import os
from typing import Any

__version__ = "0.1.0"

DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
"""The directory to put on botocore's search path (``AWS_DATA_PATH``) for ``snowvault``."""


def client(session: Any = None, **kwargs: Any) -> Any:
    """A boto3 client for the ``snowvault`` service: adds :data:`DATA_PATH` to the
    session's model loader, then ``session.client("snowvault", **kwargs)``.

    ``session`` is a ``boto3.Session`` (default: a new one); ``kwargs`` go to
    ``Session.client`` (``endpoint_url``, ``region_name``, credentials, ``config``).
    """
    import boto3

    session = session if session is not None else boto3.Session()
    loader = session._session.get_component("data_loader")
    if DATA_PATH not in loader.search_paths:
        loader.search_paths.append(DATA_PATH)
    return session.client("snowvault", **kwargs)
