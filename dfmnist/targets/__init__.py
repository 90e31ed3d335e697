"""Exports that other tools read unmodified: DeepfakeBench's dataset folder and
FaceForensics++'s directory layout, both made of links into the store."""
