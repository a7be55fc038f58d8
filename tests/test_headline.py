"""The headline metrics file: few numbers, short flat keys, none named like a param."""

from __future__ import annotations

import yaml

from colorize.evaluate.headline import headline


def details(**model_extra) -> dict:
    """A result shaped like evaluate's (only the parts the headline reads, plus noise it must drop)."""
    model = {"accuracy": 0.512345, "top5_accuracy": 0.9, "psnr": 21.23456, "ssim": 0.876543, "ciede2000": 6.54321,
             "colourfulness": 30.123, "oracle_gap_closed": 0.456789, **model_extra}
    return {"test_images": 12, "model": model, "model_decodings": {"argmax": model},
            "baselines": {"gray": {"psnr": 20.0}}, "worst_confusions": [],
            "extra": {"model": {"psnr": 16.0}, "gray": {"psnr": 15.0}, "oracle": {"psnr": 19.0}}}


def test_headline_keeps_the_figures_people_compare_rounded() -> None:
    out = headline(details())
    assert out == {"acc": 0.512, "psnr": 21.23, "ssim": 0.877, "de00": 6.54, "cf": 30.1, "gap": 0.457,
                   "xgap": 0.25}


def test_headline_without_second_source() -> None:
    result = details()
    result.pop("extra")
    out = headline(result)
    assert "xgap" not in out and len(out) == 6


def test_foreground_figures_get_short_rounded_names() -> None:
    out = headline(details(fg_accuracy=0.33333, fg_psnr=19.87654, fg_ciede2000=7.123456, fg_other=1.0))
    assert (out["fg_acc"], out["fg_psnr"], out["fg_de00"]) == (0.333, 19.88, 7.12)
    assert not {"fg_accuracy", "fg_other"} & set(out)


def test_no_headline_key_is_named_like_a_param(params_file) -> None:
    """`dvc exp show` shows metrics and params by name: a shared name (like DVCLive's train.loss against
    the train.loss param) makes a column ambiguous."""
    params = yaml.safe_load(params_file.read_text())
    names = set()
    for section, values in params.items():
        names.add(section)
        for key in values:
            names |= {key, f"{section}.{key}"}
    out = headline(details(foreground={"psnr": 1.0}))
    assert not ({*out, "step"} & names)  # with the train stage's lean summary
    assert len(out) <= 12


def test_a_gap_that_cannot_be_measured_stays_null() -> None:
    result = details(oracle_gap_closed=None)
    result["extra"]["oracle"]["psnr"] = 15.0  # no room between gray and oracle
    out = headline(result)
    assert out["gap"] is None and out["xgap"] is None
