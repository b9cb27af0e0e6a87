"""Typed configuration: the profile manifest and the layered (L0..L4) scanner configs.

Every error must name the file and the dotted key at fault; config objects are frozen and hash to a stable id.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tsp_platform.config import ConfigError, load_manifest
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.config.scanners import SCANNER_DIR, FilterOp, Layer, SortOrder, load_scanner
from tsp_platform.core.vocabulary import Calendar, Direction

# --------------------------------------------------------------------------------------------- helpers

BASE_MANIFEST = {
    "version": 1,
    "default_profile": "alpha",
    "partitions_start": "2020-01-01",
    "defaults": {
        "lookback_days": 500,
        "history_floor_days": 90,
        "friction": {"slippage_bps": 5, "commission_bps": 1},
        "features": {"feat_audit_ledger": True, "feat_short_direction": False},
    },
    "profiles": {
        "alpha": {
            "market_data": "embedded_sp500",
            "discovery": "lakehouse",
            "scanners": ["tradfi/sample_trend_long"],
            "calendar": "weekdays",
            "annualisation": 252,
        },
        "beta": {
            "market_data": "synthetic_crypto",
            "discovery": "lakehouse",
            "scanners": ["crypto/synthetic_rating_all_long"],
            "scanners_add": ["crypto/synthetic_rating_all_short"],
            "calendar": "24/7",
            "annualisation": 365,
            "friction": {"slippage_bps": 20},
            "features": {"feat_short_direction": True},
        },
    },
    "aliases": {"a": "alpha", "a2": "a"},
}


def manifest_data(**changes) -> dict:
    data = copy.deepcopy(BASE_MANIFEST)
    data.update(changes)
    return data


def write_manifest(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def shipped_l4_files() -> list[str]:
    names = []
    for path in sorted(SCANNER_DIR.rglob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if raw.get("layer") == "L4":
            names.append(path.relative_to(SCANNER_DIR).with_suffix("").as_posix())
    return names


# ------------------------------------------------------------------------------------ shipped configs


def test_shipped_manifest_loads_and_resolves_every_profile():
    manifest = load_manifest()
    assert manifest.path == DEFAULT_MANIFEST
    assert {"us_equities_sample", "crypto_synthetic", "binance_spot_ratings", "us_stocks_tradingview"} <= set(
        manifest.profile_names
    )
    assert manifest.default_profile == "us_equities_sample"
    assert manifest.canonical_name("crypto") == "crypto_synthetic"
    crypto = manifest.profile("crypto")
    assert crypto.name == "crypto_synthetic"
    assert crypto.calendar is Calendar.ALWAYS and crypto.annualisation == 365
    # features deep-merge over the defaults: the profile overrides two flags, inherits the rest
    assert crypto.features.feat_short_direction is True
    assert crypto.features.feat_strict_health is False
    assert crypto.features.feat_audit_ledger is True
    equities = manifest.profile("default")
    assert equities.name == "us_equities_sample" and equities.calendar is Calendar.WEEKDAYS
    assert equities.history_floor_days <= equities.lookback_days


def test_every_scanner_named_by_a_shipped_profile_loads():
    manifest = load_manifest()
    names = {s for profile in manifest.profiles() for s in profile.scanners}
    assert names
    for name in names:
        assert load_scanner(name).layer is Layer.L4


@pytest.mark.parametrize("name", shipped_l4_files())
def test_every_shipped_l4_scanner_loads(name):
    scanner = load_scanner(name)
    assert scanner.name == name
    assert scanner.layer is Layer.L4
    assert scanner.direction in (Direction.LONG, Direction.SHORT)
    assert scanner.source_files[-1] == f"{name}.yaml"
    assert len(scanner.source_files) >= 2  # every shipped scanner inherits a base


def test_shipped_l4_list_is_not_empty():
    assert len(shipped_l4_files()) >= 8


def test_shipped_short_scanner_merges_all_layers():
    scanner = load_scanner("crypto/synthetic_rating_all_short")
    assert scanner.direction is Direction.SHORT
    assert scanner.logic == "rating_all"  # from L3
    assert scanner.value_traded_min == 500000  # from L1
    assert scanner.exchanges == ("SYNTH",)  # from L0
    assert [(f.left, f.operation) for f in scanner.filters] == [
        ("Volatility.D", FilterOp.IN_RANGE),  # L1 replaced L0's (empty) list
        ("Recommend.All", FilterOp.LESS),  # L4 filters_add appended
    ]
    assert scanner.sort_by == "Recommend.All" and scanner.sort_order is SortOrder.ASC
    assert scanner.trend is not None and scanner.trend.recommendation_min == 0.0
    assert scanner.source_files == (
        "base/universes/synthetic_crypto.yaml",
        "base/hygiene/crypto_synthetic.yaml",
        "base/templates/crypto_spot_synthetic.yaml",
        "base/strategies/rating_all_synthetic.yaml",
        "crypto/synthetic_rating_all_short.yaml",
    )


def test_shipped_binance_scanner_appends_filters_across_layers():
    scanner = load_scanner("crypto/binance_spot_rating_all_long.yaml")  # the suffix is optional
    assert [f.left for f in scanner.filters] == ["type", "Volatility.D", "Recommend.All"]


# ------------------------------------------------------------------------------------------- manifest


def test_crafted_manifest_merges_defaults_and_profile(tmp_path):
    manifest = load_manifest(write_manifest(tmp_path, manifest_data()))
    beta = manifest.profile("beta")
    assert beta.scanners == ("crypto/synthetic_rating_all_long", "crypto/synthetic_rating_all_short")
    assert beta.friction.slippage_bps == 20 and beta.friction.commission_bps == 1  # nested dict deep-merged
    assert beta.features.feat_short_direction is True and beta.features.feat_audit_ledger is True
    assert beta.lookback_days == 500 and beta.history_floor_days == 90


@pytest.mark.parametrize(
    "where, key",
    [
        ((), "bogus"),
        (("defaults",), "defaults.bogus"),
        (("profiles", "alpha"), "profiles.alpha.bogus"),
        (("profiles", "beta", "friction"), "profiles.beta.friction.bogus"),
        (("defaults", "friction"), "defaults.friction.bogus"),
        (("defaults", "features"), "defaults.features.bogus"),
    ],
    ids=["top-level", "defaults", "profile", "profile.friction", "defaults.friction", "defaults.features"],
)
def test_unknown_manifest_key_names_file_and_dotted_key(tmp_path, where, key):
    data = manifest_data()
    node = data
    for part in where:
        node = node[part]
    node["bogus"] = 1
    path = write_manifest(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert info.value.path == str(path)
    assert info.value.key == key
    assert str(path) in str(info.value) and key in str(info.value)


def test_unknown_profile_lists_known_profiles(tmp_path):
    manifest = load_manifest(write_manifest(tmp_path, manifest_data()))
    with pytest.raises(ConfigError) as info:
        manifest.profile("gamma")
    message = str(info.value)
    assert "gamma" in message and "alpha" in message and "beta" in message
    assert info.value.key == "profiles.gamma"


def test_unknown_default_profile_is_rejected_at_load(tmp_path):
    path = write_manifest(tmp_path, manifest_data(default_profile="nope"))
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        load_manifest(path)


def test_aliases_resolve_through_chains(tmp_path):
    manifest = load_manifest(write_manifest(tmp_path, manifest_data()))
    assert manifest.canonical_name("a") == "alpha"
    assert manifest.canonical_name("a2") == "alpha"
    assert manifest.profile("a2").name == "alpha"
    assert manifest.profile("a2") == manifest.profile("alpha")


def test_alias_cycle_is_rejected(tmp_path):
    path = write_manifest(tmp_path, manifest_data(aliases={"x": "y", "y": "x"}))
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert "alias cycle" in str(info.value)
    assert info.value.key in ("aliases.x", "aliases.y")
    assert info.value.path == str(path)


def test_alias_to_unknown_profile_is_rejected(tmp_path):
    path = write_manifest(tmp_path, manifest_data(aliases={"x": "nowhere"}))
    with pytest.raises(ConfigError, match="unknown profile"):
        load_manifest(path)


def test_history_floor_above_lookback_names_the_key(tmp_path):
    data = manifest_data()
    data["profiles"]["beta"].update(lookback_days=100, history_floor_days=200)
    path = write_manifest(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert info.value.path == str(path)
    assert info.value.key.startswith("profiles.beta")
    assert "history_floor_days" in str(info.value) and "lookback_days" in str(info.value)


def test_history_floor_inherited_from_defaults_is_checked_against_profile_lookback(tmp_path):
    data = manifest_data()
    data["profiles"]["alpha"]["lookback_days"] = 60  # the defaults' floor of 90 now exceeds it
    with pytest.raises(ConfigError, match="history_floor_days"):
        load_manifest(write_manifest(tmp_path, data))


def test_out_of_range_value_names_the_key(tmp_path):
    data = manifest_data()
    data["profiles"]["alpha"]["friction"] = {"slippage_bps": -1}
    with pytest.raises(ConfigError) as info:
        load_manifest(write_manifest(tmp_path, data))
    assert info.value.key == "profiles.alpha.friction.slippage_bps"


def test_invalid_profile_name_is_rejected(tmp_path):
    data = manifest_data()
    data["profiles"]["Bad-Name"] = data["profiles"]["alpha"]
    with pytest.raises(ConfigError) as info:
        load_manifest(write_manifest(tmp_path, data))
    assert info.value.key == "profiles.Bad-Name"


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "manifest.yaml"
    path.write_text("version: 1\ndefault_profile: alpha\npartitions_start: a: b\n")
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert info.value.path == str(path)
    assert info.value.key == "line 3"
    assert "invalid YAML" in str(info.value) and str(path) in str(info.value)


def test_missing_manifest_file_is_a_config_error(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="file not found") as info:
        load_manifest(path)
    assert info.value.path == str(path)


def test_non_mapping_manifest_is_rejected(tmp_path):
    path = tmp_path / "manifest.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_manifest(path)


# ------------------------------------------------------------------------------------ frozen + config id


def test_config_objects_are_frozen(tmp_path):
    manifest = load_manifest(write_manifest(tmp_path, manifest_data()))
    profile = manifest.profile("beta")
    with pytest.raises(ValidationError):
        profile.lookback_days = 10
    with pytest.raises(ValidationError):
        profile.friction.slippage_bps = 0
    scanner = load_scanner("tradfi/sample_trend_long")
    with pytest.raises(ValidationError):
        scanner.limit = 1
    with pytest.raises(ValidationError):
        scanner.trend.recommendation_min = -1
    with pytest.raises(AttributeError):
        scanner.filters.append(None)  # tuples, not lists
    assert profile.lookback_days == 500 and scanner.limit == 25


def test_nested_mappings_of_a_frozen_config_cannot_be_mutated():
    """A frozen config with a plain dict inside (TrendGate.momentum) can be mutated in place,
    which silently changes its content and its config_id."""
    scanner = load_scanner("tradfi/sample_trend_long")
    before = scanner.config_id()
    try:
        scanner.trend.momentum["Perf.1M"] = 99.0
    except (TypeError, ValueError, AttributeError):
        pass
    assert scanner.trend.momentum["Perf.1M"] == 0.0
    assert scanner.config_id() == before


def test_config_id_is_stable_and_content_sensitive(tmp_path):
    for sub in ("one", "two", "three"):
        (tmp_path / sub).mkdir()
    first = load_manifest(write_manifest(tmp_path / "one", manifest_data()))
    second = load_manifest(write_manifest(tmp_path / "two", manifest_data()))
    assert first.profile("alpha").config_id() == second.profile("alpha").config_id()
    assert len(first.profile("alpha").config_id()) == 16
    changed = manifest_data()
    changed["profiles"]["alpha"]["friction"] = {"commission_bps": 2}
    third = load_manifest(write_manifest(tmp_path / "three", changed))
    assert third.profile("alpha").config_id() != first.profile("alpha").config_id()
    assert first.profile("alpha").config_id() != first.profile("beta").config_id()
    # scanner ids: stable across loads, different between the long and short variants
    assert load_scanner("tradfi/sample_trend_long").config_id() == load_scanner("tradfi/sample_trend_long").config_id()
    assert load_scanner("tradfi/sample_trend_long").config_id() != load_scanner("tradfi/sample_trend_short").config_id()


# ------------------------------------------------------------------------------ scanner layering (tmp)

UNIVERSE = """\
layer: L0
markets: [crypto]
exchanges: [X]
filters:
  - {left: Volatility.D, operation: greater, right: 0.1}
  - {left: close, operation: greater, right: 1}
columns: [close]
trend:
  recommendation_min: 0.2
  momentum: {Perf.1M: 0}
sort_by: Value.Traded
limit: 500
value_traded_min: 1000
"""
HYGIENE = """\
layer: L1
base_preset: ../universes/u.yaml
value_traded_min: 5000
filters_add:
  - {left: change, operation: greater, right: -50}
trend:
  adx_min: 10
"""
TEMPLATE = """\
layer: L2
base_preset: ../hygiene/h.yaml
columns_add: [ADX]
limit: 200
"""


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "scanners"
    write(root, "base/universes/u.yaml", UNIVERSE)
    write(root, "base/hygiene/h.yaml", HYGIENE)
    write(root, "base/templates/t.yaml", TEMPLATE)
    write(root, "s/long.yaml", "layer: L4\nbase_preset: ../base/templates/t.yaml\ndirection: long\nlimit: 10\n")
    return root


def test_layering_merges_dicts_overrides_scalars_and_appends_add_keys(tree):
    scanner = load_scanner("s/long", root=tree)
    assert scanner.name == "s/long"
    assert scanner.direction is Direction.LONG
    # dicts deep-merge: L0's recommendation_min and momentum survive L1's adx_min
    assert scanner.trend.recommendation_min == 0.2
    assert scanner.trend.adx_min == 10
    assert scanner.trend.momentum == {"Perf.1M": 0.0}
    # scalars override
    assert scanner.value_traded_min == 5000
    assert scanner.limit == 10
    # *_add appends to the inherited list
    assert [(f.left, f.right) for f in scanner.filters] == [("Volatility.D", 0.1), ("close", 1.0), ("change", -50.0)]
    assert scanner.columns == ("close", "ADX")
    assert scanner.source_files == (
        "base/universes/u.yaml",
        "base/hygiene/h.yaml",
        "base/templates/t.yaml",
        "s/long.yaml",
    )


def test_lists_replace_so_an_l4_can_drop_an_inherited_filter(tree):
    write(tree, "s/one.yaml", "layer: L4\nbase_preset: ../base/templates/t.yaml\ndirection: short\n"
          "filters:\n  - {left: close, operation: greater, right: 2}\n")
    write(tree, "s/none.yaml", "layer: L4\nbase_preset: ../base/templates/t.yaml\ndirection: long\nfilters: []\n")
    one = load_scanner("s/one", root=tree)
    assert [(f.left, f.right) for f in one.filters] == [("close", 2.0)]
    assert one.direction is Direction.SHORT
    assert load_scanner("s/none", root=tree).filters == ()


def test_add_key_does_not_duplicate_an_inherited_item(tree):
    write(tree, "s/dup.yaml", "layer: L4\nbase_preset: ../base/templates/t.yaml\ndirection: long\ncolumns_add: [close, ADX, volume]\n")
    assert load_scanner("s/dup", root=tree).columns == ("close", "ADX", "volume")


def test_add_key_in_a_root_layer_is_applied_or_blamed_on_that_layer(tmp_path):
    """`filters_add` is an allowed key on every layer. On a layer without a base it is never merged:
    it survives into the final dict and is reported as an unknown field of the *L4* file."""
    root = tmp_path / "scanners"
    origin = write(root, "u.yaml", "layer: L0\nfilters_add:\n  - {left: close, operation: greater, right: 1}\n")
    write(root, "s.yaml", "layer: L4\nbase_preset: u.yaml\ndirection: long\n")
    error, scanner = None, None
    try:
        scanner = load_scanner("s", root=root)
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert error.path == str(origin.resolve()), f"error blames the wrong file: {error}"
    else:
        assert [(f.left, f.right) for f in scanner.filters] == [("close", 1.0)]


def test_unknown_key_in_a_middle_layer_names_that_file_and_key(tree):
    hygiene = tree / "base/hygiene/h.yaml"
    hygiene.write_text(HYGIENE + "liquidity_floor: 5\n")
    with pytest.raises(ConfigError) as info:
        load_scanner("s/long", root=tree)
    assert info.value.path == str(hygiene.resolve())
    assert info.value.key == "liquidity_floor"
    assert "h.yaml" in str(info.value) and "liquidity_floor" in str(info.value)


def test_add_suffix_on_a_scalar_key_is_unknown(tree):
    write(tree, "s/bad.yaml", "layer: L4\nbase_preset: ../base/templates/t.yaml\ndirection: long\nlimit_add: [1]\n")
    with pytest.raises(ConfigError) as info:
        load_scanner("s/bad", root=tree)
    assert info.value.key == "limit_add"


def test_add_key_must_be_a_list(tree):
    path = write(tree, "s/bad.yaml", "layer: L4\nbase_preset: ../base/templates/t.yaml\ndirection: long\ncolumns_add: ADX\n")
    with pytest.raises(ConfigError, match="list") as info:
        load_scanner("s/bad", root=tree)
    assert info.value.path == str(path.resolve()) and info.value.key == "columns_add"


def test_missing_base_preset_is_a_bad_preset_error(tree):
    path = write(tree, "s/orphan.yaml", "layer: L4\nbase_preset: ../base/nope.yaml\ndirection: long\n")
    with pytest.raises(ConfigError, match="bad preset") as info:
        load_scanner("s/orphan", root=tree)
    assert info.value.path == str(path.resolve())
    assert info.value.key == "base_preset"
    assert "nope.yaml" in str(info.value)


def test_inheritance_cycle_is_rejected(tree):
    write(tree, "c/a.yaml", "layer: L4\nbase_preset: b.yaml\ndirection: long\n")
    write(tree, "c/b.yaml", "layer: L3\nbase_preset: a.yaml\n")
    with pytest.raises(ConfigError, match="inheritance cycle") as info:
        load_scanner("c/a", root=tree)
    assert info.value.key == "base_preset"
    assert "a.yaml" in str(info.value) and "b.yaml" in str(info.value)


def test_self_inheritance_is_a_cycle(tree):
    write(tree, "c/self.yaml", "layer: L4\nbase_preset: self.yaml\ndirection: long\n")
    with pytest.raises(ConfigError, match="inheritance cycle"):
        load_scanner("c/self", root=tree)


@pytest.mark.parametrize("base_layer", ["L4", "L3"])
def test_base_of_equal_or_higher_layer_is_rejected(tree, base_layer):
    write(tree, "x/base.yaml", f"layer: {base_layer}\ndirection: long\n")
    path = write(tree, "x/child.yaml", "layer: L3\nbase_preset: base.yaml\ndirection: long\n")
    write(tree, "x/top.yaml", "layer: L4\nbase_preset: child.yaml\ndirection: long\n")
    with pytest.raises(ConfigError, match="cannot inherit") as info:
        load_scanner("x/top", root=tree)
    assert info.value.path == str(path.resolve()) and info.value.key == "base_preset"


def test_l4_without_its_own_direction_is_rejected(tree):
    write(tree, "base/strategies/dir.yaml", "layer: L3\nbase_preset: ../templates/t.yaml\ndirection: long\n")
    path = write(tree, "s/nodir.yaml", "layer: L4\nbase_preset: ../base/strategies/dir.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_scanner("s/nodir", root=tree)
    assert info.value.key == "direction"
    assert info.value.path == str(path.resolve())


def test_non_l4_file_is_not_runnable(tree):
    write(tree, "base/strategies/st.yaml", "layer: L3\nbase_preset: ../templates/t.yaml\ndirection: long\n")
    with pytest.raises(ConfigError, match="only an L4") as info:
        load_scanner("base/strategies/st", root=tree)
    assert info.value.key == "layer"


def test_shipped_non_l4_layer_is_not_runnable():
    with pytest.raises(ConfigError):
        load_scanner("base/strategies/rating_all_synthetic")


def test_invalid_layer_value_is_rejected(tree):
    write(tree, "s/l9.yaml", "layer: L9\ndirection: long\n")
    with pytest.raises(ConfigError) as info:
        load_scanner("s/l9", root=tree)
    assert info.value.key == "layer"


def test_base_preset_escaping_the_root_is_rejected(tmp_path, tree):
    write(tmp_path, "outside.yaml", "layer: L0\nmarkets: [crypto]\n")
    path = write(tree, "s/escape.yaml", "layer: L4\nbase_preset: ../../outside.yaml\ndirection: long\n")
    with pytest.raises(ConfigError, match="bad preset") as info:
        load_scanner("s/escape", root=tree)
    assert "outside" in str(info.value)
    assert info.value.path == str(path.resolve()) and info.value.key == "base_preset"


def test_scanner_reference_escaping_the_root_is_rejected(tmp_path, tree):
    write(tmp_path, "rogue.yaml", "layer: L4\ndirection: long\n")
    with pytest.raises(ConfigError, match="outside"):
        load_scanner("../rogue", root=tree)


def test_invalid_filter_in_l4_names_file_and_key(tree):
    path = write(tree, "s/op.yaml", "layer: L4\nbase_preset: ../base/templates/t.yaml\ndirection: long\n"
                 "filters:\n  - {left: close, operation: bigger, right: 2}\n")
    with pytest.raises(ConfigError) as info:
        load_scanner("s/op", root=tree)
    assert info.value.path == str(path.resolve())
    assert info.value.key == "filters.0.operation"


def test_range_filter_needs_a_pair(tree):
    write(tree, "s/rng.yaml", "layer: L4\nbase_preset: ../base/templates/t.yaml\ndirection: long\n"
          "filters:\n  - {left: close, operation: in_range, right: 2}\n")
    with pytest.raises(ConfigError, match="low, high"):
        load_scanner("s/rng", root=tree)


def test_invalid_scanner_yaml_names_file_and_line(tree):
    path = write(tree, "s/broken.yaml", "layer: L4\ndirection: long\nlimit: a: b\n")
    with pytest.raises(ConfigError) as info:
        load_scanner("s/broken", root=tree)
    assert info.value.path == str(path.resolve()) and info.value.key == "line 3"
