"""DeepfakeBench's dataset layout: names, dataset JSONs and the per-frame folders (`layout`),
and the LMDB format its loader reads with `lmdb: True` (`lmdb_format`)."""
