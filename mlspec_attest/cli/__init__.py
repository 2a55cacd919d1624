"""The ``mlspec-attest`` command line: thin click commands over the library.

``main`` holds the command table and loads a command's module only when that command
runs, so ``--help`` stays fast; it is also the one place errors become exit codes.
Each command parses its options (shared decorators in ``options``), calls one library
function and renders the result (``render``); decisions belong to the library.

May import: every layer of :mod:`mlspec_attest`. Nothing imports ``cli`` but the
``mlspec-attest`` entry point and ``python -m mlspec_attest``.
"""
