"""Bonettini et al.'s published detectors (polimi-ispl/icpr2020dfdc) and the seed report's
experiment with them: the networks loaded strictly (detector, keys, same_padding), the face
crops they expect (crops), the report's alterations (alterations) and the `published_scores`
target's scoring, table and figure (scores)."""
