import pytest

from hfadapt import AdaptConfig


def cfg(tmp_path, **kw):
    return AdaptConfig(output_dir=str(tmp_path), report_to="none", **kw)


def test_defaults_and_method_parsing(tmp_path):
    c = cfg(tmp_path)
    assert c.method_names == ["dann"] and c.label_names == ["labels"]
    assert cfg(tmp_path, method="none").method_names == []
    assert cfg(tmp_path, method="DANN + mmd").method_names == ["dann", "mmd"]
    assert cfg(tmp_path, mmd_weight=0.3).method_weight("mmd") == 0.3
    assert c.source_per_batch(32) == 16 and cfg(tmp_path, target_fraction=0.25).source_per_batch(8) == 6


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("method", "coral-typo", "unknown method 'coral-typo'"),
        ("method", "none+dann", "unknown method 'none'"),
        ("method", "dann+dann", "twice"),
        ("dann_weight", -1.0, "dann_weight"),
        ("mmd_weight", float("nan"), "mmd_weight"),
        ("grl_schedule", "linear", "grl_schedule"),
        ("weight_schedule", "linear", "weight_schedule"),
        ("alignment_balancing", "gradnorm", "alignment_balancing"),
        ("grl_gamma", 0.0, "grl_gamma"),
        ("discriminator_lr_multiplier", -2.0, "discriminator_lr_multiplier"),
        ("discriminator_num_layers", 0, "discriminator_num_layers"),
        ("mmd_kernel_multipliers", [], "mmd_kernel_multipliers"),
        ("mmd_kernel_multipliers", [1.0, -1.0], "mmd_kernel_multipliers"),
        ("mmd_estimator", "quadratic", "mmd_estimator"),
        ("feature_source", "pooler", "feature_source"),
        ("target_fraction", 1.0, "target_fraction"),
        ("lora_r", 0, "lora_r"),
        ("discriminator_dropout", 1.0, "discriminator_dropout"),
        ("peft_save", "both", "peft_save"),
    ],
)
def test_bad_values_name_the_field(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        cfg(tmp_path, **{field: value})


def test_defaults_are_the_recipe_s_method_settings(tmp_path):
    """AdaptConfig() gets the method settings the benchmark supports: every adaptation field the sentiment recipe
    sets equals its default, except the method itself (the recipe's adamatch, AdaptConfig's dann) and AdaMatch's
    distribution alignment (off in the recipe; on in AdaptConfig, as in the paper and the digits recipe)."""
    import dataclasses

    import yaml
    from transformers import TrainingArguments

    from hfadapt.cli.recipes import recipe_path

    recipe = yaml.safe_load(recipe_path("text").read_text())
    own = {f.name for f in AdaptConfig.flat_fields()} - {f.name for f in dataclasses.fields(TrainingArguments)}
    config = AdaptConfig(output_dir=str(tmp_path), use_cpu=True)
    # the budget and the precision are the run's, not method settings
    method_keys = sorted(own & recipe.keys() - {"method", "mixed_precision", "early_stopping_patience",
                                                "early_stopping_min_steps", "adamatch_distribution_alignment"})
    assert (recipe["method"], config.method) == ("adamatch", "dann")
    assert (recipe["adamatch_distribution_alignment"], config.adamatch_distribution_alignment) == (False, True)
    assert {"grl_max_lambda", "alignment_balancing", "mmd_weight", "iw_flattening", "udalm_weight",
            "adamatch_tau"} <= set(method_keys)
    assert {k: getattr(config, k) for k in method_keys} == {k: recipe[k] for k in method_keys}
