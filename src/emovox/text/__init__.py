"""The text branch: emotion probabilities from the words of a transcript.

Sentence embeddings (:mod:`emovox.text.embed`) feed a linear head
(:class:`~emovox.text.model.TextEmotionModel`) trained on GoEmotions and CARER
(:mod:`emovox.text.corpora`). The encoders need ``pip install 'emovox[text]'``.
"""

from emovox.text.corpora import TEXT_LABELS, read_split
from emovox.text.embed import ENCODERS, embed, embed_cached
from emovox.text.model import TextEmotionModel, default_text_model_dir, load_text_model

__all__ = ["ENCODERS", "TEXT_LABELS", "TextEmotionModel", "default_text_model_dir", "embed",
           "embed_cached", "load_text_model", "read_split"]
