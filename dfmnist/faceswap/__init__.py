"""Face-swap autoencoders (DFDM): aligned crops, models, training and conversion."""
