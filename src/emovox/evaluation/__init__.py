"""Measure a recipe honestly: speaker and corpus splits (:mod:`.splits`), protocols on unseen
speakers and corpora (:mod:`.protocols`), metrics (:mod:`.metrics`) and reports
(:mod:`.report`)."""
