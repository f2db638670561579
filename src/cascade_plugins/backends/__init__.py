"""Backends run one cascade stage: the embedded CPU host and the NeMo RL adapters."""
