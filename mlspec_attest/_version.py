"""The version of mlspec-attest, in a leaf module so that any layer may read it."""

__version__ = "0.1.0"

VERIFIER_ID = "https://mlspec-attest.dev/verifier/v1"
"""The verifier's URI in a verification summary (``verifier.id``) unless told otherwise."""
