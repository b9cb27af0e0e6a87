"""docs/configuration-reference.md is generated from the pydantic config models and cannot drift from them."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import typing

from pydantic import BaseModel

from tsp_cli import config_reference
from tsp_cli.config_reference import COMMAND, DOC_PATH, PROJECT_ROOT, main, render
from tsp_platform.config.models import Friction, ManifestFile
from tsp_platform.config.scanners import ScannerConfig

ROW = re.compile(r"^\| `([^`]+)` \|")


def reachable(model: type[BaseModel], seen: dict[type[BaseModel], None] | None = None) -> list[type[BaseModel]]:
    """Every model an annotation of `model` reaches (through unions, tuples, dicts), walked independently."""
    seen = {} if seen is None else seen
    if model in seen:
        return list(seen)
    seen[model] = None

    def models_in(tp) -> list[type[BaseModel]]:
        if inspect.isclass(tp) and issubclass(tp, BaseModel):
            return [tp]
        return [m for arg in typing.get_args(tp) for m in models_in(arg)]

    for info in model.model_fields.values():
        for sub in models_in(info.annotation):
            reachable(sub, seen)
    return list(seen)


def sections(text: str) -> dict[str, list[str]]:
    """Anchor id -> the keys of that section's table, in order."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if match := re.match(r'^<a id="([^"]+)"></a>$', line):
            current = out.setdefault(match.group(1), [])
        elif current is not None and (match := ROW.match(line)):
            current.append(match.group(1))
    return out


def row(text: str, anchor: str, key: str) -> str:
    section = text.split(f'<a id="{anchor}"></a>', 1)[1].split("<a id=", 1)[0]
    [line] = [line for line in section.splitlines() if line.startswith(f"| `{key}` |")]
    return line


def test_committed_reference_is_current():
    committed = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
    assert committed == render(), (
        f"{DOC_PATH.relative_to(PROJECT_ROOT)} is stale: the config models changed. Regenerate it with `{COMMAND}` "
        "(from the project root) and commit the result; never edit it by hand."
    )


def test_render_is_deterministic_and_says_it_is_generated():
    text = render()
    assert text == render()
    assert COMMAND in text.split("\n## ", 1)[0] and "Do not edit by hand" in text.split("\n## ", 1)[0]


def test_every_field_of_every_reachable_model_is_documented():
    text = render()
    documented = sections(text)
    models = reachable(ManifestFile) + reachable(ScannerConfig)
    assert len(models) >= 20  # manifest, profile settings and their sub-models, meta profiles, scanner models
    for model in models:
        anchor = model.__name__.lower()
        assert anchor in documented, f"{model.__name__} has no section"
        assert documented[anchor] == list(model.model_fields), f"{model.__name__}: table keys differ from its fields"
    # no table rows other than the models' fields
    assert sum(len(keys) for keys in documented.values()) == sum(len(m.model_fields) for m in models)
    for path in (
        "profiles.<name>",
        "profiles.<name>.friction",
        "profiles.<name>.health",
        "profiles.<name>.selection.vetoes",
        "profiles.<name>.allocation.regime",
        "profiles.<name>.tournament.windows",
        "profiles.<name>.tournament.gates",
        "meta_profiles.<name>.stream",
        "filters[]",
    ):
        assert f"### `{path}`" in text, path
    assert "Also at `defaults.friction`." in text


def test_constraints_defaults_and_enums_render():
    text = render()
    slippage = Friction.model_fields["slippage_bps"]
    assert [type(m).__name__ for m in slippage.metadata] == ["Ge", "Le"]  # the values checked below
    assert row(text, "friction", "slippage_bps") == "| `slippage_bps` | float | `5.0` | ≥ 0, ≤ 1000 |  |"
    assert "| > 0, ≤ 1 |" in row(text, "poolconfig", "liquidity_tie_ratio")
    assert "| min length 2 |" in row(text, "metaprofile", "sleeves")
    assert "≥ 0, finite" in row(text, "orderssettings", "min_notional")
    # profile settings show the resolved profile's defaults and the settings model's own bounds
    assert row(text, "profilesettings", "lookback_days") == "| `lookback_days` | int | `500` | ≥ 20, ≤ 20000 |  |"
    assert "| *required* |" in row(text, "profilesettings", "market_data")
    assert "`embedded_sp500`" in row(text, "profilesettings", "market_data")
    assert "names match `^[a-z][a-z0-9_]{0,63}$`" in row(text, "manifestfile", "profiles")
    # a pipe inside a description is escaped so the table keeps five columns
    assert "\\|close/prev - 1\\|" in row(text, "healththresholds", "toxic_daily_return")
    assert "every [EngineName](#enum-enginename) value" in row(text, "allocationconfig", "engines")
    assert '<a id="enum-riskprofile"></a>' in text


def test_new_fields_are_picked_up_without_listing_them(monkeypatch):
    from pydantic import Field

    from tsp_platform.core.frozen import FrozenConfig

    class Extra(FrozenConfig):
        """An extra block."""

        knob: int = Field(3, ge=1, description="a knob")

    class Wider(ManifestFile):
        extra: dict[str, Extra] | None = None

    roots = tuple(
        config_reference.Root(r.title, r.files, Wider if r.model is ManifestFile else r.model, r.top_label)
        for r in config_reference.ROOTS
    )
    monkeypatch.setattr(config_reference, "ROOTS", roots)
    text = render()
    assert "### `extra.<name>`" in text
    assert row(text, "extra", "knob") == "| `knob` | int | `3` | ≥ 1 | a knob |"


def test_check_mode_fails_on_a_stale_file(tmp_path, capsys):
    out = tmp_path / "configuration-reference.md"
    assert main(["--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render()
    assert main(["--check", "--out", str(out)]) == 0

    out.write_text(render().replace("| ≥ 0, ≤ 1000 |", "| ≥ 0, ≤ 999 |", 1), encoding="utf-8")
    capsys.readouterr()
    assert main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "is out of date" in err and f"{COMMAND} --out {out}" in err and "≤ 999" in err

    missing = tmp_path / "absent.md"
    assert main(["--check", "--out", str(missing)]) == 1
    assert "does not exist" in capsys.readouterr().err and not missing.exists()


def test_module_entry_point_check(tmp_path):
    stale = tmp_path / "stale.md"
    stale.write_text("# hand-edited\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "tsp_cli.config_reference", "--check", "--out", str(stale)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and COMMAND in result.stderr
