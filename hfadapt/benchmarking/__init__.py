"""What the benchmarks in ``benchmarks/`` share, importable so that tests and child processes read the same code.

- :mod:`hfadapt.benchmarking.ledger`: the results ledger, one JSON line per run: appending rows, claiming runs
  across processes, matching rows to a budget and a recipe, and the table of paired differences to source-only.
- :mod:`hfadapt.benchmarking.pairs`: the transfer pairs of the demo reviews and their tokenised splits, through
  :mod:`hfadapt.data` as the examples and ``hfadapt train`` read them.
- :mod:`hfadapt.benchmarking.timing`: timing steps and writing the speed benchmarks' result files.
- :mod:`hfadapt.benchmarking.agreement`: how well each label-free validator ranks a finished grid's models as
  target accuracy does (what a grid's rule assumes of the validator it reads).
- :mod:`hfadapt.benchmarking.members`: the arguments and setup of scripts that score a finished grid's kept models
  again, as the grid read them, without training.
- :mod:`hfadapt.benchmarking.fusion`: fused models on the grid (``<mode>:<member>/<member>``).
- :mod:`hfadapt.benchmarking.store`: the store of trained models that a grid's processes share, each kept under
  what defines its run.
- :mod:`hfadapt.benchmarking.prior_matching`: each grid model scored again after target prior matching.
- :mod:`hfadapt.benchmarking.label_shift`: subsample sizes for label-shifted copies of a binary domain.
"""
