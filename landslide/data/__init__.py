"""Data on disk, patch sampling and the Lightning DataModule."""
