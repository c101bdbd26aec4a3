"""The loopback HTTP server of tests that stand in for a remote service (an OIDC issuer, a Kudu
site, a media host, a stub API); it lives in ``local_runtime``, whose token issuer serves on it."""

from local_runtime.http_server import LocalHttpServer

__all__ = ["LocalHttpServer"]
