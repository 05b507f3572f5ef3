"""Side effects: booting, reconciling and tearing down slices and baselines, readiness, seeds, faults."""
