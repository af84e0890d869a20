"""The command line. tuitrain.cli.main is the console script's entry point."""
