"""Process-level helpers: distributed gathering, random-number streams, CPU threads, PEFT, offline models."""
