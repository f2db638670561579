"""Loss plugins (torch only): MOPD works on per-token log-prob tensors."""
