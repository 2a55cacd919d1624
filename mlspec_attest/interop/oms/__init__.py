"""OpenSSF model-signing (OMS): format translation over this package's own layers.

``signature`` signs and verifies OMS signatures, ``trust`` maps OMS verification
options onto keys, certificate chains and Sigstore, ``manifest`` writes and reads OMS
manifests and their signed statement.

May import: everything below interop (verify, policy, evidence, signing, digest, store,
formats, errors).
"""
