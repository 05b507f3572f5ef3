"""Pure decisions: the service graph, the slice, the rendered project, reconcile and lifetime rules."""
