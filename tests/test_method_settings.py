"""Method settings live beside their methods: AdaptConfig folds them in from keyword arguments, ``method_settings``,
flags and recipe keys, and reads, saves and records them as it did when they were its own fields."""

import dataclasses
import pickle

import pytest
from transformers import TrainingArguments

from hfadapt import AdaptConfig
from hfadapt.cli.args import SettingsArgumentParser, parse_with_config
from hfadapt.methods import ALIGNMENT_METHODS, SHARED_SETTINGS, register_method, setting_defaults, settings_classes
from hfadapt.methods.base import AlignmentMethod
from hfadapt.methods.mmd import MMDSettings

SHARED = {  # adaptation_settings("none") before the settings moved to the methods
    "grl_schedule": "warm_start",
    "grl_max_lambda": 0.1,
    "grl_gamma": 10.0,
    "weight_schedule": "warm_start",
    "label_free_validators": [],
    "label_free_source_split": "source_val",
    "label_free_max_rows": 1000,
    "discriminator_hidden_size": 256,
    "discriminator_num_layers": 2,
    "discriminator_dropout": 0.1,
    "discriminator_lr_multiplier": 10.0,
    "source_only_full_batch": True,
    "feature_source": "head_input",
    "target_fraction": 0.5,
    "source_weighting": "uniform",
    "source_domain_weights": None,
    "source_weighting_samples": 256,
    "early_stopping_patience": 0,
    "early_stopping_min_steps": 0,
    "weight_ema_decay": None,
    "target_prior_matching": False,
    "use_peft": False,
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.1,
    "lora_target_modules": None,
    "peft_save": "merged",
}

OWN = {  # what adaptation_settings(method) added to SHARED, before the settings moved to the methods
    "none": {},
    "dann": {
        "dann_weight": 1.0,
        "alignment_balancing": "gradient",
    },
    "cdan": {
        "cdan_weight": 1.0,
        "alignment_balancing": "gradient",
        "cdan_entropy_conditioning": False,
    },
    "jan": {
        "mmd_weight": 0.1,
        "jan_weight": 0.1,
        "alignment_balancing": "gradient",
        "mmd_kernel_multipliers": [0.25, 0.5, 1.0, 2.0, 4.0],
        "mmd_estimator": "unbiased",
    },
    "iw": {
        "iw_weight": 1.0,
        "iw_clip": 10.0,
        "iw_flattening": 0.5,
    },
    "udalm": {
        "udalm_weight": 0.01,
        "udalm_head_warmup": 0.1,
        "udalm_mask_probability": 0.15,
        "udalm_train_output_embedding": True,
    },
    "fixmatch": {
        "fixmatch_weight": 1.0,
        "fixmatch_threshold": 0.95,
        "fixmatch_augmentation": "mask:0.1+cutoff:0.1+randaugment:2+cutout:0.5",
    },
    "mean_teacher": {
        "mean_teacher_weight": 1.0,
        "mean_teacher_ema_decay": 0.99,
        "mean_teacher_threshold": 0.9,
        "mean_teacher_augmentation": "mask:0.1+cutoff:0.1+randaugment:2+cutout:0.5",
        "mean_teacher_class_balance": 0.0,  # added after the freeze, off by default
    },
    "self_training": {
        "self_training_weight": 1.0,
        "self_training_threshold": 0.0,
        "self_training_class_fraction": 0.5,
        "self_training_warmup": 0.1,
        "self_training_queue_size": 512,
        "self_training_distribution_alignment": False,  # added after the freeze, off by default
    },
    "dann+mmd": {
        "dann_weight": 1.0,
        "mmd_weight": 0.1,
        "alignment_balancing": "gradient",
        "mmd_kernel_multipliers": [0.25, 0.5, 1.0, 2.0, 4.0],
        "mmd_estimator": "unbiased",
    },
    "iw+fixmatch": {
        "iw_weight": 1.0,
        "iw_clip": 10.0,
        "iw_flattening": 0.5,
        "fixmatch_weight": 1.0,
        "fixmatch_threshold": 0.95,
        "fixmatch_augmentation": "mask:0.1+cutoff:0.1+randaugment:2+cutout:0.5",
    },
}


def cfg(tmp_path, **kw):
    return AdaptConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, **kw)


@pytest.mark.parametrize("method", sorted(OWN))
def test_adaptation_settings_are_those_of_the_fields_before(tmp_path, method):
    """The recipe a run records (and benchmark rows match on) has the same keys and values as when every setting
    was an AdaptConfig field."""
    # adapt_from_source_only: added after the freeze, off by default; a method's recipe has it, the baseline's not
    added = {} if method == "none" else {"adapt_from_source_only": False}
    added |= {"tapt_steps": 0, "tapt_learning_rate": 1e-4, "tapt_head_warmup": 0.1}  # TAPT, added later: off
    assert cfg(tmp_path).adaptation_settings(method) == {**SHARED, **added, **OWN[method]}


def test_adaptation_settings_leave_out_other_methods_settings(tmp_path):
    config = cfg(tmp_path, method="jan", mmd_weight=0.3, fixmatch_threshold=0.5)
    settings = config.adaptation_settings()
    assert settings["mmd_weight"] == 0.3 and "fixmatch_threshold" not in settings  # JAN reads MMD's settings


def test_adapt_config_holds_no_single_method_s_field():
    names = {f.name for f in dataclasses.fields(AdaptConfig)} - {f.name for f in dataclasses.fields(TrainingArguments)}
    assert not names & set(setting_defaults())
    assert not [n for n in names for m in ALIGNMENT_METHODS if n.startswith(f"{m}_")]
    owned = {m.settings_class for m in ALIGNMENT_METHODS.values()}
    assert None not in owned and set(settings_classes()) == owned | set(SHARED_SETTINGS)


def test_keyword_arguments_replace_and_attributes(tmp_path):
    config = cfg(tmp_path, method="dann+mmd", mmd_weight=0.5, method_settings={"dann_weight": 0.2})
    assert (config.mmd_weight, config.dann_weight, config.coral_weight) == (0.5, 0.2, 0.1)
    assert config.settings_of(MMDSettings).mmd_weight == 0.5 and config.method_settings["mmd_weight"] == 0.5
    replaced = dataclasses.replace(config, dann_weight=0.7)
    assert (replaced.dann_weight, replaced.mmd_weight) == (0.7, 0.5)
    config.mmd_weight = 0.25  # an assignment reaches the settings object the method reads
    assert config.settings_of(MMDSettings).mmd_weight == 0.25 == config.method_settings["mmd_weight"]
    assert cfg(tmp_path, method_settings='{"iw_clip": 2.0}').iw_clip == 2.0
    with pytest.raises(AttributeError):
        _ = config.no_such_setting


def test_unknown_setting_lists_the_run_s_settings(tmp_path):
    with pytest.raises(ValueError, match=r"unknown method setting\(s\) \['mmd_wieght'\].*'mmd_estimator'"):
        cfg(tmp_path, method="mmd", method_settings={"mmd_wieght": 0.5})
    with pytest.raises(TypeError):
        cfg(tmp_path, mmd_wieght=0.5)


@pytest.mark.parametrize("field, value", [("self_training_warmup", 0.6), ("self_training_queue_size", 0),
                                          ("udalm_mask_probability", 1.0), ("adamatch_tau", 0.0),
                                          ("mean_teacher_threshold", 1.0), ("fixmatch_augmentation", "nope:1"),
                                          ("iw_flattening", 1.5), ("mcc_temperature", 0.0), ("grl_max_lambda", -1.0)])
def test_each_settings_class_checks_its_fields(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        cfg(tmp_path, method="none", **{field: value})


def test_to_dict_is_flat_and_rebuilds_the_config(tmp_path):
    config = cfg(tmp_path, method="mmd", mmd_kernel_multipliers=[1.0, 2.0], cdan_entropy_conditioning=True)
    values = config.to_dict()
    assert "method_settings" not in values and values["mmd_kernel_multipliers"] == [1.0, 2.0]
    assert set(setting_defaults()) <= set(values) and '"cdan_entropy_conditioning": true' in config.to_json_string()
    rebuilt = AdaptConfig(**{k: v for k, v in values.items() if k in {f.name for f in dataclasses.fields(AdaptConfig)}
                             or k in setting_defaults()})
    assert rebuilt.adaptation_settings() == config.adaptation_settings()
    restored = pickle.loads(pickle.dumps(config))  # what trainer.save_model writes as training_args.bin
    assert restored.mmd_kernel_multipliers == [1.0, 2.0] and restored == config


def test_flags_and_recipe_keys_set_method_settings(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("method: dann+mmd\nmmd_estimator: biased\niw_clip: 3.0\n")
    (config,) = parse_with_config((AdaptConfig,), ["--output_dir", str(tmp_path), "--config", str(recipe),
                                                   "--dann_weight", "0.5", "--mmd_kernel_multipliers", "1", "2",
                                                   "--no_udalm_train_output_embedding"])
    assert (config.dann_weight, config.mmd_kernel_multipliers, config.mmd_estimator, config.iw_clip) == (
        0.5, [1.0, 2.0], "biased", 3.0)
    assert config.udalm_train_output_embedding is False and config.mmd_weight == 0.1
    recipe.write_text("mmd_wieght: 1\n")
    with pytest.raises(ValueError, match="mmd_wieght"):
        parse_with_config((AdaptConfig,), ["--output_dir", str(tmp_path), "--config", str(recipe)])


def test_help_lists_every_setting_with_its_help():
    text = " ".join(SettingsArgumentParser((AdaptConfig,)).format_help().split())
    for name in setting_defaults():
        assert f"--{name}" in text
    assert "Gaussian kernel bandwidths of MK-MMD" in text and "MMDSettings" in text
    assert "--method_settings" not in text  # its entries are flags of their own


def test_a_setting_name_is_registered_once():
    @dataclasses.dataclass
    class Clash:
        mmd_weight: float = 1.0

    class Duplicate(AlignmentMethod):
        name = "duplicate_settings"
        settings_class = Clash

    with pytest.raises(ValueError, match="mmd_weight"):
        register_method(Duplicate)
    assert "duplicate_settings" not in ALIGNMENT_METHODS
