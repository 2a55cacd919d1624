"""The ``mlspec-attest`` command line: thin click commands over the library."""
