"""Adversarial corpus (issue 10, item 6): one named scenario per attack; see README.md."""
