"""Training the learned mouth: data from real captures, augmentation, the seeded loop, validation."""
