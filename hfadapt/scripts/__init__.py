"""The training scripts ``hfadapt train`` launches through accelerate (and the examples run): text
classification (:mod:`hfadapt.scripts.text_transfer`) and image classification
(:mod:`hfadapt.scripts.image_transfer`). They live in the package so an installed wheel has them."""
