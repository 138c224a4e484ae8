"""Cross-domain sentiment: adapt a pretrained BERT-family model from one Amazon product domain to another, or
any text classifier from your own source data to your own unlabelled target data.

The script is :mod:`hfadapt.cli.scripts.text_transfer`, which ``hfadapt train`` runs too; this file is its entry point
in the repository. Data: by default the Multi-Domain Sentiment Dataset (Blitzer et al., ACL 2007) shipped with
the package (``--dataset_name demo:amazon-msd --domain_column_name domain``). Protocol (as in DAAT and UDALM):
source reviews split 80/20 into train and validation; the target reviews' texts are the unlabelled training data,
and their labels are used only for the final test. Trains the source-only baseline and the chosen method with the
same seed and budget, prints the table and writes it to <output_dir>/results.json beside the saved models.

Default recipe: hfadapt/cli/recipes/sentiment_transfer.yaml; --config mine.yaml layers over it, flags override both.

    # default: books -> electronics, packaged all-MiniLM-L6-v2, source-only vs AdaMatch, up to 600 steps
    accelerate launch examples/sentiment_transfer.py
    # MMD instead, another pair
    accelerate launch examples/sentiment_transfer.py --method mmd --source dvd --target books
    # multi-source: books + dvd -> electronics, source weights from feature distance to the target
    accelerate launch examples/sentiment_transfer.py --source books+dvd --source_weighting auto
    # UDALM (target masked LM) with DANN
    accelerate launch examples/sentiment_transfer.py --method udalm+dann
    # multi-task: sentiment and star rating on one backbone (L = L_sentiment + 0.5 L_rating)
    accelerate launch examples/sentiment_transfer.py --rating_weight 0.5
    # quick run on a few reviews
    accelerate launch examples/sentiment_transfer.py --max_train_samples 64 --max_eval_samples 64 --max_steps 4
    # your own data: labelled source CSV, unlabelled target CSV, string labels
    accelerate launch examples/sentiment_transfer.py --source_train_file src.csv --target_train_file tgt.csv
    # LoRA (saved merged, loads with from_pretrained)
    accelerate launch examples/sentiment_transfer.py --use_peft --lora_r 8
    # a Hub model where the network allows
    accelerate launch examples/sentiment_transfer.py --model_name_or_path bert-base-uncased
"""

from hfadapt.cli.args import run_as_script
from hfadapt.cli.scripts.text_transfer import main
from hfadapt.utils.distributed import end_process_group

if __name__ == "__main__":
    run_as_script(main)
    end_process_group()
