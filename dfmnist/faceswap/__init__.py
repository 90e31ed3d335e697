"""Face-swap deepfakes as DFDM made them: five autoencoder models, their training and conversion."""
