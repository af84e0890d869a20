"""`tomllib` on every supported Python: the standard library from 3.11, tomli (same API) on 3.10."""

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

__all__ = ["tomllib"]
