"""Training methods: which parameters train and how they are saved. Orthogonal to families."""
