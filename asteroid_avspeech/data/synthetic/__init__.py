"""The embedded default corpus: real face photos lip-synced to synthetic speech, laid out like AVSpeech.

Entry point: :func:`~.corpus.generate_corpus` (``local/generate_corpus.py`` on the command line).
"""
