"""Cascade RL: the stage plan, the sequencer, the teacher registry, the report."""
