"""The storage machinery every stage shares: the content-addressed store and its repair,
tar items, safe file writes, video decoding and encoding, input discovery and damage reports."""
