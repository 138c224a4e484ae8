"""Handwritten digits across scanners: adapt an image classifier from one digits domain to another, or from any
labelled image data to unlabelled image data of another domain.

The script is :mod:`hfadapt.cli.scripts.image_transfer`, which ``hfadapt train --task image`` runs too; this file is
its entry point in the repository. Domains (nothing to download): UCI optdigits, 8x8, bundled with scikit-learn,
and USPS, 16x16, shipped with the package (or --usps_dir, else $HFADAPT_USPS_DIR). Protocol: the source's train
split is labelled training data (its test split the source validation set); the target's train split is
unlabelled training data and its test split the target test set. Beside source-only and the method, the same
recipe is trained on the *labelled* target train split (target-supervised), so the table says what share of the
gap the method closes.

Default recipe: hfadapt/cli/recipes/digits_transfer.yaml: optdigits -> USPS, a small ViT initialised from a config
and trained from scratch, AdaMatch.

    accelerate launch examples/digits_transfer.py                                  # optdigits -> USPS
    accelerate launch examples/digits_transfer.py --source usps --target optdigits # the other direction
    accelerate launch examples/digits_transfer.py --method mmd                      # another method
    accelerate launch examples/digits_transfer.py --backbone resnet                 # a small ResNet instead
    accelerate launch examples/digits_transfer.py --source_dataset_name photos/ --target_dataset_name sketches/ \\
        --num_channels 3 --image_size 32                                            # imagefolders of your own
    accelerate launch examples/digits_transfer.py --model_name_or_path google/vit-base-patch16-224-in21k  # network
"""

from hfadapt.cli.args import run_as_script
from hfadapt.cli.scripts.image_transfer import main
from hfadapt.utils.distributed import end_process_group

if __name__ == "__main__":
    run_as_script(main)
    end_process_group()
