"""The documentation holds: its code runs, its commands take the flags they are given, its
figures are in the results files it names, its parameter docs are the node's.

Blocks and figures added later are picked up by themselves; what cannot be checked here
is listed below, each with the reason (docs/testing.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_check import (
    DOCS,
    PARAMETER_DOC,
    PARAMETER_FILE,
    REPO,
    Block,
    code_blocks,
    command_problem,
    holds,
    inline_commands,
    inline_problem,
    numbers_in,
    parameter_doc,
    parameter_file,
    results_paths,
    shell_commands,
    units,
)

# Blocks that cannot run or be parsed here, by doc and first words, with the reason (none today).
NOT_CHECKED: dict[tuple[str, str], str] = {}

# Units whose figures are not checked: not measurements (defaults, targets, sizes chosen), or
# measurements whose results file was never kept (debt: measure again and name the file).
UNCHECKED_FIGURES = {
    ("docs/setup.md", "`make demo` runs the main job"): "the bag's rate (10 Hz) and the report's fields",
    ("docs/performance.md", "The GPU machine needs only Python"): "package versions and sizes, not measurements",
    ("docs/performance.md", "- **Peak**"): "the method's settings (5 %, 10 Hz, 10 %)",
    ("docs/performance.md", "**GPU: not measured.**"): "the issue's targets",
    ("docs/performance.md", "Targets on an H100/H200"): "the issue's targets",
    ("docs/node.md", "Every camera has its own newest-frame slot"): "batch_wait_ms's default (10 ms)",
    ("docs/weights.md", "(`--force` overwrites."): "float16's range and the 1 % rule",
    ("docs/reliability.md", "`python -m icnet_bench.soak stream` (defaults"): "the tool's defaults (600 s, 30 Hz)",
    ("docs/reliability.md", "- **Out of memory**"): "sizes the test chooses (16 MB frame, 192 MB tensor)",
}

# Single figures that are not measurements, by doc: sizes and settings beside measured ones.
NOT_MEASUREMENTS = {
    ("docs/node.md", "6 MB"): "the size of a 1024x2048 rgb8 frame",
    ("docs/node.md", "64 MiB"): "the profile's shared-memory segment size",
}


def _reason(entries: dict, path: Path, text: str) -> str | None:
    """The reason ``entries`` gives for the block or unit of ``path`` that starts with ``text``."""
    relative = str(path.relative_to(REPO))
    return next((reason for (doc, start), reason in entries.items()
                 if relative == doc and text.lstrip().startswith(start)), None)


def _id(block: Block) -> str:
    return block.where


BASH = [b for b in code_blocks() if b.language in ("bash", "sh", "shell")]
CONSOLE = [b for b in code_blocks() if b.language == "console"]  # `$ command` lines, then its output
PYTHON = [b for b in code_blocks() if b.language == "python"]


def test_every_block_is_tagged_as_code_or_left_untagged_as_output():
    languages = {b.language for b in code_blocks()}
    assert languages <= {"", "bash", "console", "python", "yaml", "xml"}, languages


@pytest.mark.parametrize("block", BASH, ids=_id)
def test_shell_block_commands_resolve_with_their_flags(block):
    reason = _reason(NOT_CHECKED, block.path, block.text)
    if reason:
        pytest.skip(reason)
    problems = [f"{' '.join(argv)}: {problem}" for argv in shell_commands(block.text)
                if (problem := command_problem(argv))]
    assert not problems, f"{block.where}:\n" + "\n".join(problems)


@pytest.mark.parametrize("block", CONSOLE, ids=_id)
def test_console_block_commands_resolve_with_their_flags(block):
    """The ``$`` lines of a console block (test_cli_tools runs them and compares the output)."""
    lines = [line[2:] for line in block.text.splitlines() if line.startswith("$ ")]
    assert lines, f"{block.where}: a console block without a `$ ` command line"
    problems = [f"{' '.join(argv)}: {problem}" for argv in shell_commands("\n".join(lines))
                if (problem := command_problem(argv))]
    assert not problems, f"{block.where}:\n" + "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(REPO)))
def test_commands_quoted_in_sentences_use_flags_their_tools_have(doc):
    problems = [f"`{' '.join(argv)}`: {problem}" for argv in inline_commands(doc) if (problem := inline_problem(argv))]
    assert not problems, "\n".join(problems)


def test_a_wrong_flag_or_parameter_is_caught():
    """Negative controls: the checks fire on what a drifting doc would say."""
    assert command_problem(["icnet-eval", "bag", "--no-such-flag"])
    assert command_problem(["icnet-bench", "model", "--models", "sub124", "--rounds", "5"])  # --repeats
    assert command_problem(["python", "-m", "icnet_bench.soak", "cycles", "--cycles", "3"])
    assert command_problem(["segmentation_node", "--ros-args", "-p", "weight:=w.safetensors"])
    assert command_problem(["ros2", "launch", "icnet_ros", "segment.launch.py", "camera:=/cam"])
    assert command_problem(["make", "demos"])
    assert command_problem(["icnet-train", "train", "--accumulate", "4"])
    assert not command_problem(["icnet-train", "train", "--accumulation", "4"])
    assert inline_problem(["icnet-bench-node", "--parts", "engine", "--framez", "20"])
    assert inline_problem(["ros2", "param", "set", "/icnet_segmenter", "overlay_alfa", "0.7"])
    assert not inline_problem(["icnet-bench-node", "--parts", "engine", "--frames", "20"])


def _weights_state_dict(folder: Path) -> None:
    """What icnet-convert-caffe writes before the metadata is added: a plain state dict."""
    from safetensors.torch import save_file

    from icnet_ros.model.icnet import icnet

    save_file(icnet(width=0.5).state_dict(), folder / "model.safetensors")


# Files a Python block reads, made in its folder before it runs.
PYTHON_FIXTURES = {"model.safetensors": _weights_state_dict}


@pytest.mark.parametrize("block", PYTHON, ids=_id)
def test_python_block_runs(block, tmp_path, monkeypatch):
    if "from launch import" in block.text:
        pytest.importorskip("launch_ros", reason="the ROS 2 launch stack (../shared/ros2-launch) is not installed")
    for name, make in PYTHON_FIXTURES.items():
        if name in block.text:
            make(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_block"}
    exec(compile(block.text, block.where, "exec"), namespace)   # noqa: S102 - the docs' own code
    if "generate_launch_description" in namespace:
        from launch import LaunchDescription

        description = namespace["generate_launch_description"]()
        assert isinstance(description, LaunchDescription) and description.entities


def test_results_files_named_in_the_docs_exist():
    missing = [f"{unit.where}: {name}" for doc in DOCS for unit in units(doc) for name in unit.files
               if not results_paths(name)]
    assert not missing, missing


def test_results_files_name_tools_that_exist():
    """A results file's ``tool`` (``python -m MODULE ...``) is a module of this project today."""
    import importlib.util
    import json

    stale = []
    for path in sorted([*(REPO / "bench" / "results").glob("*.json"), *(REPO / "docs").glob("*/*.json")]):
        tool = json.loads(path.read_text()).get("tool", "")
        if tool.startswith("python -m ") and importlib.util.find_spec(tool.split()[2]) is None:
            stale.append(f"{path.relative_to(REPO)}: {tool}")
    assert not stale, stale


def test_measured_figures_name_their_results_file():
    """A paragraph, list item or table that reads as a measurement (measured, median, took,
    p50...) and quotes figures names its results file, or one above it in its section does."""
    orphans = [f"{unit.where}: {unit.figures()[:4]} in {unit.text[:80]!r}"
               for doc in DOCS for unit in units(doc)
               if unit.figures() and not unit.files and unit.reads_as_measurement
               and not _reason(UNCHECKED_FIGURES, doc, unit.text)]
    assert not orphans, "\n".join(orphans)


def test_figures_are_in_the_results_files_they_name():
    """Each figure (a number with a unit; in tables every decimal) of a unit with results
    files is one of their numbers, as rounded in the doc, in the same or a related unit."""
    absent = []
    for doc in DOCS:
        for unit in units(doc):
            if not unit.files or _reason(UNCHECKED_FIGURES, doc, unit.text):
                continue
            numbers = [n for name in unit.files for path in results_paths(name) for n in numbers_in(path)]
            relative = str(doc.relative_to(REPO))
            absent += [f"{unit.where}: {value} not in {list(unit.files)}" for value in unit.figures()
                       if not holds(value, numbers) and (relative, value) not in NOT_MEASUREMENTS]
    assert not absent, "\n".join(absent)


def test_a_figure_that_is_not_in_its_file_is_caught(tmp_path):
    """Negative control of the figure check, on a doc written for it."""
    results = REPO / "docs" / "reliability" / "soak_cycles_2026-11-21.json"
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Soak\n\nMeasured: 378.3 MiB after 100 cycles and 999.9 MiB at the end "
                   f"(`{results.relative_to(REPO)}`).\n")
    (unit,) = units(doc)
    numbers = numbers_in(results)
    assert unit.figures() == ["378.3 MiB", "999.9 MiB"]
    assert [holds(value, numbers) for value in unit.figures()] == [True, False]


def test_parameter_table_and_file_are_generated_from_the_declarations():
    """docs/parameters.md's table and config/icnet.yaml are the node's PARAMETERS, descriptions
    included: one written meaning per parameter (run ``python test/package/docs_check.py --write``)."""
    assert PARAMETER_DOC.read_text() == parameter_doc()
    assert PARAMETER_FILE.read_text() == parameter_file()


def test_every_exemption_still_names_a_paragraph_of_its_doc():
    """An exemption whose paragraph was rewritten or removed is stale: it would hide the next one."""
    stale = [key for key in UNCHECKED_FIGURES
             if not any(unit.text.lstrip().startswith(key[1]) for unit in units(REPO / key[0]))]
    assert not stale, stale
