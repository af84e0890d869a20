"""Tests of the Textual app: Pilot, snapshots, and a real terminal (tmux)."""
