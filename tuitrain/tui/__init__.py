"""The Textual app. Never imports torch: it talks to the trainer over the run's socket."""
