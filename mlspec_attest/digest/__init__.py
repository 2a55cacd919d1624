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
  digests computed by a Dask cluster (docs/scale.md).

May import: :mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""
