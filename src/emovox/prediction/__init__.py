"""From a model to answers: results (:mod:`.result`), the shared :class:`~.predictor.Predictor`,
the decision over labels (:mod:`.decision`), the PyTorch model (:mod:`.torch_model`), loading
and the shipped models (:mod:`.loading`) and timelines of long recordings (:mod:`.timeline`)."""
