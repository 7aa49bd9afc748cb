"""`make bench`: timings and footprints, side by side with what they compare to."""
