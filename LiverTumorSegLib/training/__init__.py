"""Training of the segmentation network (data, augmentation, synthetic tumors, losses, loop, export)."""
