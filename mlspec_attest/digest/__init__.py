"""Digests: the one engine that hashes files, directories, shards and dataset rows.

Owns, lowest first:

* ``scheme``: the algorithm registry, the serializations, the one shard-size
  default and the one rule on which combinations exist (blake3 is never sharded);
* ``walk``: the one directory walker, under artifact rules or model-signing's;
* ``engine``: parallel hashing of files and shards (one file at a time in
  ``_reader``, batches in ``_schedule``, helper processes in ``_helper`` and
  ``_helper_driver``); ``engine.digest_file`` is the one file hasher;
* ``directory``: the directory manifest document and its model-signing root;
* ``artifact``: the digest of an attested path (``digest_path``) and in-toto's ``dir:`` hash;
* ``serialization``: OpenSSF model-signing serializations (files, shards) as
  strategies over the engine;
* ``cache``: the opt-in per-file digest cache (signing only);
* ``datasets`` and ``rows``: datasets opened for canonical row digests;
* ``remote``: objects named by URL (``s3://`` ...), listed and hashed streaming
  through fsspec; ``cluster`` and ``cluster_rows``: the same digests and row
  digests computed by a Dask cluster (docs/scale.md), whose client in use is in
  ``dask_client`` and the command line's choice of one in ``dask_options``.

May import: :mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.

The object-store and Dask hashers are loaded on first use (PEP 562): a digest of local
files, the verifier's case, imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest.formats.lazy import lazy_exports

if TYPE_CHECKING:
    from mlspec_attest.digest.cluster import ClusterHashing, run_tasks, session
    from mlspec_attest.digest.remote import ObjectHashing, open_target

#: Each lazily loaded name -> the module that defines it (the imports above, for type checkers).
_LAZY = {
    "ClusterHashing": "cluster",
    "run_tasks": "cluster",
    "session": "cluster",
    "ObjectHashing": "remote",
    "open_target": "remote",
}

__all__ = ["ClusterHashing", "ObjectHashing", "open_target", "run_tasks", "session"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
