"""Shared code for the REDCap-on-AWS control-plane Lambdas.

Shipped in the ``SharedLayer`` (``layers/shared``); each function's ``app.py``
stays a thin handler over the plain functions in this package.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
