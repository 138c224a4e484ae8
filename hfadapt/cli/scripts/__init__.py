"""The training scripts ``hfadapt train`` launches through accelerate (and the examples run): text
classification (:mod:`hfadapt.cli.scripts.text_transfer`) and image classification
(:mod:`hfadapt.cli.scripts.image_transfer`). They live in the package so an installed wheel has them."""
