"""Shared machinery: input validation, reduction, the logit-loss path and the registry."""
