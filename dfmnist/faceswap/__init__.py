"""Face-swap deepfakes as DFDM made them: aligned crops, five autoencoder models, their
training, the conversion of target videos, and the face-swap stage of the workflow."""
