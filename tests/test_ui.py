"""The real Dagster webserver on 127.0.0.1: its GraphQL API describes our assets, checks, partitions and sensor,
and headless Chromium renders the asset graph and ohlcv_history's checks page (not an error page, not the
"Join the Dagster community" modal).

One webserver per module, on a temporary instance; the definitions never open the lakehouse at import, so
TSP_LAKEHOUSE points at a file that does not exist yet.
"""

from __future__ import annotations

import re
import shutil

import pytest
from PIL import Image, ImageStat

from assets.health_checks import RETURNS_SPECS
from partitions import DATE_DIM, PROFILE_DIM, tournament_cell_partitions
from tsp_cli import ui
from tsp_platform.config import load_manifest
from tsp_platform.health import Gate

pytestmark = pytest.mark.slow

NUX_TEXT = "Join the Dagster community"
WIDTH, HEIGHT = 1600, 1000

ASSET_NODES = """
{
  assetNodes {
    assetKey { path }
    groupName
    partitionDefinition { type dimensionTypes { name type dynamicPartitionsDefinitionName } }
    assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } }
  }
}
"""
PARTITION_KEYS = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode { partitionKeysByDimension { name partitionKeys } }
  }
}
"""
WORKSPACE = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
    }
  }
}
"""
REPOSITORIES = """
{
  repositoriesOrError {
    ... on RepositoryConnection { nodes { name location { name } sensors { name } jobs { name } } }
  }
}
"""


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ui.PROJECT_ROOT / "configs" / "dagster.yaml", home / "dagster.yaml")
    lake = tmp_path_factory.mktemp("lake") / "lake.duckdb"
    port = ui.free_port()
    with ui.start_webserver(home, port, {"TSP_LAKEHOUSE": str(lake)}):
        yield port
    assert not lake.exists(), "the webserver opened the lakehouse just by loading the definitions"


@pytest.fixture(scope="module")
def asset_nodes(port) -> dict[str, dict]:
    (location,) = ui.graphql(port, WORKSPACE)["workspaceOrError"]["locationEntries"]
    assert location["locationOrLoadError"]["__typename"] == "RepositoryLocation", location
    assert (location["name"], location["loadStatus"]) == ("tsp_platform", "LOADED")
    return {"/".join(node["assetKey"]["path"]): node for node in ui.graphql(port, ASSET_NODES)["assetNodes"]}


def checks_of(node: dict) -> dict[str, bool]:
    return {check["name"]: check["blocking"] for check in node["assetChecksOrError"]["checks"]}


def test_graphql_serves_the_asset_graph(asset_nodes, defs_for):
    defs = defs_for()
    graph = defs.resolve_asset_graph()
    assert set(asset_nodes) == {key.to_user_string() for key in graph.get_all_asset_keys()}
    served_checks = {(key, name) for key, node in asset_nodes.items() for name in checks_of(node)}
    assert served_checks == {(check.asset_key.to_user_string(), check.name) for check in graph.asset_check_keys}

    scan = asset_nodes["discovery_scan"]["partitionDefinition"]
    assert scan["type"] == "MULTIPARTITIONED"
    assert {d["name"]: d["type"] for d in scan["dimensionTypes"]} == {DATE_DIM: "TIME_WINDOW", PROFILE_DIM: "STATIC"}

    cells = asset_nodes["tournament_cells"]["partitionDefinition"]
    assert cells["type"] == "DYNAMIC"
    assert [d["dynamicPartitionsDefinitionName"] for d in cells["dimensionTypes"]] == [tournament_cell_partitions.name]

    ohlcv = checks_of(asset_nodes["ohlcv_history"])
    assert {gate.value: True for gate in Gate}.items() <= ohlcv.items(), "every health gate is a blocking check"
    returns = checks_of(asset_nodes["returns_matrix"])
    assert returns.get("point_in_time") is True
    assert {name: True for name in RETURNS_SPECS}.items() <= returns.items()


def test_graphql_profile_partitions_are_the_manifest_profiles(port):
    node = ui.graphql(port, PARTITION_KEYS, {"path": ["discovery_scan"]})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    keys = {dim["name"]: dim["partitionKeys"] for dim in node["partitionKeysByDimension"]}
    assert sorted(keys[PROFILE_DIM]) == sorted(load_manifest().profile_names)
    assert keys[DATE_DIM] and keys[DATE_DIM] == sorted(keys[DATE_DIM])


def test_graphql_lists_the_sensor_and_jobs(port):
    (repo,) = ui.graphql(port, REPOSITORIES)["repositoriesOrError"]["nodes"]
    assert repo["location"]["name"] == "tsp_platform"
    assert "tournament_fanout" in {sensor["name"] for sensor in repo["sensors"]}
    assert {"data_cycle", "alpha_cycle", "tournament_cells_job"} <= {job["name"] for job in repo["jobs"]}


def page_text(dom: str) -> str:
    """The rendered page's visible-ish text: tags and comments dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<!--.*?-->|<[^>]+>", " ", dom, flags=re.S).split())


def assert_real_screenshot(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (WIDTH, HEIGHT)
        rgb = image.convert("RGB")
    colours = rgb.getcolors(maxcolors=WIDTH * HEIGHT)
    assert len(colours) > 200, f"{path.name}: only {len(colours)} colours, the page looks blank"
    assert max(ImageStat.Stat(rgb).stddev) > 10, f"{path.name}: almost uniform pixels, the page looks blank"


def test_screenshots_of_the_asset_graph_and_checks_page(port, asset_nodes, tmp_path):
    chromium = ui.find_chromium()
    if not chromium:
        pytest.skip("chromium not installed: .ci/run installs Debian's chromium (apt-get install chromium) when it "
                    "runs as root; the GraphQL assertions in this file ran without it")
    ui.dismiss_nux(port)
    assert ui.graphql(port, "{ shouldShowNux }") == {"shouldShowNux": False}

    graph_png = tmp_path / "asset-graph.png"
    graph = page_text(ui.screenshot(f"http://{ui.HOST}:{port}{ui.ASSET_GRAPH_PAGE}", graph_png, WIDTH, HEIGHT,
                                    chromium=chromium))
    assert NUX_TEXT not in graph
    assert "Global asset lineage" in graph
    groups = {node["groupName"] for node in asset_nodes.values()}
    assert groups and all(group in graph for group in groups), f"groups {sorted(groups)} not all drawn"
    assert_real_screenshot(graph_png)

    checks_png = tmp_path / "checks.png"
    checks = page_text(ui.screenshot(f"http://{ui.HOST}:{port}{ui.CHECKS_PAGE}", checks_png, WIDTH, HEIGHT,
                                     chromium=chromium))
    assert NUX_TEXT not in checks
    assert f"Checks ({len(checks_of(asset_nodes['ohlcv_history']))})" in checks
    assert all(gate.value in checks for gate in Gate)
    assert "blocking asset check" in checks
    assert_real_screenshot(checks_png)
