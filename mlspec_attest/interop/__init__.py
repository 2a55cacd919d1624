"""Interoperability with other supply-chain tools (OpenSSF model-signing, legacy in-toto).

Each format lives in its own module and is imported explicitly, so importing this
package loads nothing.
"""
