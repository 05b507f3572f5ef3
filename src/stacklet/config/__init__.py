"""Files to models: stack.yaml, the Compose project, checks and fault profiles. No Docker."""
