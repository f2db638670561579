"""Run untrusted programs in isolation with hard limits."""
