"""Stage `rules/sources.smk`: score every source clip's frames (`scoring`), then pick the
most frontal, sharpest frame per clip and a balanced set of identities (`selection`)."""
