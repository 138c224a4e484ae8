"""The `hfadapt` command, its argument parsing, the scripts it runs, the recipes, and `hfadapt.adapt()`."""
