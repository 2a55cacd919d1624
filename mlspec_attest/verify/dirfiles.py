"""Directory artifacts seen file by file, for rules that name paths inside them.

An attestation records a directory as one artifact (its root digest plus the
digest of its manifest, stored content-addressed), so the attestation's size
does not grow with the number of files. Most rules treat a directory as a
whole (``MATCH model WITH PRODUCTS FROM train`` compares roots). A rule whose
pattern names a path *inside* a directory (``MATCH model.pkl IN dist/model ...``,
``DISALLOW dist/model/*``) needs its files: such a directory is expanded from its
manifest, which is fetched by the digest the signature covers. Each file then
becomes an artifact ``<dir>/<path>`` beside the directory entry itself.

Fail closed: a manifest the store does not hold, or one that does not match the
signed digest, is a problem reported by the caller, never a silently smaller set.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping

from msgspec import Struct, field

from mlspec_attest.digest.directory import DirectoryManifest, FileEntry
from mlspec_attest.errors import MlspecError
from mlspec_attest.policy.model import Policy
from mlspec_attest.policy.rules import ArtifactRule, Digests, LinkArtifacts, RuleVerb
from mlspec_attest.store.ledger import AttestationStore


def rule_paths(policy: Policy) -> frozenset[str]:
    """Every path pattern the policy's rules apply, with their IN prefixes joined."""
    out: set[str] = set()
    for stage in policy.stages:
        for rule in (*stage.material_rules, *stage.product_rules):
            out.update(_paths_of(rule))
    return frozenset(out)


def _paths_of(rule: ArtifactRule) -> Iterable[str]:
    yield _own_path(rule)
    if rule.verb is RuleVerb.MATCH and rule.dest_prefix:
        yield posixpath.join(rule.dest_prefix, rule.pattern)


def _own_path(rule: ArtifactRule) -> str:
    return posixpath.join(rule.source_prefix, rule.pattern) if rule.source_prefix else rule.pattern


def rule_queue(
    rules: Iterable[ArtifactRule], recorded: Digests, expanded: Digests
) -> dict[str, Mapping[str, str]]:
    """The artifacts a rule list sees: what the stage recorded, plus the files of each
    directory that one of *these* rules names a path inside.

    Other stages may look inside a directory (a ``MATCH … IN`` lookup) without this
    list having to account for its files one by one.
    """
    own = [_own_path(rule) for rule in rules]
    inside = [name for name in recorded if reaches_inside(name, own)]
    out: dict[str, Mapping[str, str]] = dict(recorded)
    for name, digest in expanded.items():
        if any(name.startswith(d.rstrip("/") + "/") for d in inside):
            out[name] = digest
    return out


def reaches_inside(directory: str, paths: Iterable[str]) -> bool:
    """True if a rule pattern starts with ``directory/`` (it names something inside)."""
    prefix = directory.rstrip("/") + "/"
    return any(p.startswith(prefix) for p in paths)


def file_digest(entry: FileEntry, manifest: DirectoryManifest) -> dict[str, str]:
    """A file's digest set as its manifest records it (comparable within one scheme)."""
    scheme = manifest.scheme
    if scheme.sharded:
        return {f"{scheme.algorithm}-shards-{scheme.shard_size}": ",".join(entry.shards)}
    return {scheme.algorithm: entry.digest}


class Expander(Struct):
    """Expands directory artifacts whose insides the policy's rules name."""

    store: AttestationStore
    paths: frozenset[str]
    problems: list[str] = field(default_factory=list)
    _cache: dict[str, DirectoryManifest | None] = field(default_factory=dict)

    def expand(self, artifacts: Digests) -> dict[str, Mapping[str, str]]:
        out: dict[str, Mapping[str, str]] = dict(artifacts)
        for name, digest in sorted(artifacts.items()):
            if "manifest-sha256" not in digest or not reaches_inside(name, self.paths):
                continue
            manifest = self._manifest(digest["manifest-sha256"])
            if manifest is None:
                self.problems.append(
                    f"the files of directory {name!r} cannot be checked: its manifest "
                    f"sha256:{digest['manifest-sha256'][:16]}… is not in the store or is corrupt"
                )
                continue
            if manifest.root != digest.get(manifest.scheme.key):
                self.problems.append(
                    f"the manifest of directory {name!r} does not produce its attested digest"
                )
                continue
            for entry in manifest.entries:
                path = posixpath.join(name, entry.path)
                files = file_digest(entry, manifest)
                known = out.get(path)
                if known is not None and dict(known) != files:
                    self.problems.append(
                        f"{path!r} is recorded twice with different digests "
                        f"(as an artifact and inside directory {name!r})"
                    )
                out[path] = files
        return out

    def link(self, link: LinkArtifacts) -> LinkArtifacts:
        return LinkArtifacts(self.expand(link.materials), self.expand(link.products))

    def _manifest(self, digest: str) -> DirectoryManifest | None:
        if digest not in self._cache:
            blob = self.store.get_blob(digest)
            manifest = None
            if blob is not None:
                try:
                    manifest = DirectoryManifest.from_bytes(blob)
                except MlspecError:
                    manifest = None
            self._cache[digest] = manifest
        return self._cache[digest]
