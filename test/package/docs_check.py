"""What the documentation says, read so that tests can hold it to the code (test_docs.py).

The conventions it reads (docs/testing.md):

- Code a user pastes is a fenced block tagged ``bash`` or ``python``; output is untagged.
- A bash block's commands name tools that exist, with flags and arguments those tools take.
- A measured figure names its results file (under ``bench/results/`` or ``docs/``) in its
  paragraph, list item or table (with the caption just above it), or in the closest such
  unit above it in the same section.
- The parameter table of docs/parameters.md and config/icnet.yaml are generated from the
  node's declarations: ``python test/package/docs_check.py --write`` rewrites both.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import glob
import importlib.util
import io
import re
import runpy
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "bench" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PARAMETER_DOC = REPO / "docs" / "parameters.md"
PARAMETER_FILE = REPO / "config" / "icnet.yaml"
TABLE_START = "<!-- generated from PARAMETERS (icnet_ros/ros/parameters.py): python test/package/docs_check.py --write -->"
TABLE_END = "<!-- end of the generated table -->"


# ----------------------------------------------------------------------------- blocks

@dataclass(frozen=True)
class Block:
    path: Path
    line: int     # of the opening fence
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def code_blocks(paths: list[Path] = DOCS) -> list[Block]:
    blocks = []
    for path in paths:
        text = path.read_text()
        for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
            blocks.append(Block(path, text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2)))
    return blocks


def shell_commands(text: str) -> list[list[str]]:
    """The simple commands of a bash block: continuation lines joined, comments dropped,
    split at ``;``, ``&&``, ``||``, ``|`` and ``&``; leading ``VAR=value`` and ``time``
    dropped, and ``...`` (the docs' "and so on")."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|"):
                while command and (re.match(r"^[A-Z_][A-Z0-9_]*=", command[0]) or command[0] == "time"):
                    command.pop(0)
                if command:
                    commands.append(command)
                command = []
            elif token not in ("...", "…"):
                command.append(token)
    return commands


# ----------------------------------------------------------------------------- tools

class _Parsed(BaseException):
    """Raised once a tool's argument parser accepted its arguments: nothing else runs (a
    BaseException, so that a tool's ``except Exception`` does not take it for its own)."""


@contextlib.contextmanager
def _parse_only() -> Iterator[None]:
    real = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise _Parsed(real(self, args, namespace))

    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse_args):
        yield


def argparse_problem(call: Callable[[], object]) -> str | None:
    """Why the tool that ``call`` starts refuses its arguments (its own parser's message),
    or None; the tool stops right after parsing."""
    errors = io.StringIO()
    with _parse_only(), contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            call()
        except _Parsed:
            return None
        except SystemExit as exit_:
            if exit_.code in (0, None):
                return None   # --help
            lines = errors.getvalue().strip().splitlines()
            return lines[-1] if lines else f"exit status {exit_.code}"
    return "it never parsed its arguments"


class _Parser(BaseException):
    """Raised with a tool's argument parser the moment it would parse: nothing else runs."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def tool_parser(call: Callable[[], object]) -> argparse.ArgumentParser:
    """The argument parser of the tool that ``call`` starts (stopped before it parses)."""
    def parse_args(self, args=None, namespace=None):
        raise _Parser(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse_args), \
            contextlib.redirect_stdout(io.StringIO()):
        try:
            call()
        except _Parser as found:
            return found.parser
    raise AssertionError("the tool never built an argument parser")


def unknown_flags(parser: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """The ``-x``/``--xx`` of ``args`` that neither ``parser`` nor a subcommand named in ``args`` has."""
    options = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for token in args:
                if token in action.choices:
                    options |= set(action.choices[token]._option_string_actions)
    flags = [token.split("=", 1)[0] for token in args if re.match(r"--?[a-zA-Z]", token)]
    return [flag for flag in flags if flag not in options]


def console_scripts() -> dict[str, str]:
    """name -> 'module:function' from setup.py."""
    text = (REPO / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+) = ([\w.]+:\w+)"', text))


def run_console_script(name: str, args: list[str]) -> str | None:
    main = _script_main(name)
    return argparse_problem(lambda: main(list(args)))


def _script_main(name: str) -> Callable:
    module, function = console_scripts()[name].split(":")
    return getattr(__import__(module, fromlist=[function]), function)


def _module_main(module: str, args: list[str]) -> Callable[[], None]:
    def call() -> None:
        with mock.patch.object(sys, "argv", [module, *args]):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    return call


def run_module(module: str, args: list[str]) -> str | None:
    return argparse_problem(_module_main(module, args))


def inline_problem(argv: list[str]) -> str | None:
    """For a command quoted in a sentence (often a part of one): the flags it names exist."""
    tool, args = argv[0], argv[1:]
    if tool in console_scripts() and tool != "segmentation_node":
        unknown = unknown_flags(tool_parser(lambda: _script_main(tool)([])), args)
    elif tool in ("python", "python3") and args[:1] == ["-m"] and len(args) > 1 and args[1].split(".")[0] in OWN:
        unknown = unknown_flags(tool_parser(_module_main(args[1], [])), args[2:])
    elif tool == "ros2":
        # Checked where the mention is whole: a launch file or executable, a parameter name.
        whole = {"launch": 3, "run": 3, "param": 4, "lifecycle": 4}.get(args[0] if args else "", 99)
        return command_problem(argv) if len(args) >= whole and not args[whole - 1].startswith("<") else None
    elif tool in ("segmentation_node", "make"):
        return command_problem(argv) if args else None
    else:
        return None
    return f"no such flags {unknown}" if unknown else None


def inline_commands(path: Path) -> list[list[str]]:
    """Commands quoted in the doc's sentences (inline code starting with a tool this project has
    or uses: its console scripts, ``python -m``, ``ros2``, ``make``), outside code blocks."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S).replace("\n", " ")
    tools = set(console_scripts()) | {"ros2", "make", "python", "python3"}
    commands = []
    for span in re.findall(r"`([^`]+)`", text):
        words = span.split()
        if words and words[0] in tools and not (words[0].startswith("python") and words[1:2] != ["-m"]):
            try:
                commands += shell_commands(span)
            except ValueError:   # a quote left open: not a command
                continue
    return commands


def launch_arguments(launch_file: Path) -> set[str]:
    """The arguments the launch file declares (its own LaunchDescription where the launch
    stack is installed, else the names in its ``ARGUMENTS`` table)."""
    try:
        import launch  # noqa: F401
    except ImportError:
        tree = ast.parse(launch_file.read_text())
        table = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                     and any(getattr(t, "id", "") == "ARGUMENTS" for t in node.targets))
        return {entry.elts[0].value for entry in table.elts}
    spec = importlib.util.spec_from_file_location("docs_checked_launch_file", launch_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {argument.name for argument in module.generate_launch_description().get_launch_arguments()}


def package_name() -> str:
    return re.search(r"<name>([\w-]+)</name>", (REPO / "package.xml").read_text()).group(1)


def ros_arguments_problem(args: list[str]) -> str | None:
    """Check ``--ros-args`` and what follows: parameter names, files, remappings."""
    from icnet_ros.ros.parameters import PARAMETERS

    names = {spec.name for spec in PARAMETERS}
    if not args:
        return None
    if args[0] != "--ros-args":
        return f"expected --ros-args, got {args[0]!r}"
    tokens = iter(args[1:])
    for token in tokens:
        value = next(tokens, None)
        if value is None:
            return f"{token} without a value"
        if token == "--params-file":
            if not (REPO / value).is_file():
                return f"no parameter file {value}"
        elif token == "-p":
            name = value.split(":=", 1)[0]
            if ":=" not in value or name not in names:
                return f"-p {value}: no such parameter of the node"
        elif token == "-r":
            if ":=" not in value:
                return f"-r {value}: a remapping is from:=to"
        else:
            return f"{token}: not a ROS argument these docs use (--params-file, -p, -r)"
    return None


LIFECYCLE_TRANSITIONS = {"configure", "activate", "deactivate", "cleanup", "shutdown"}
# Commands of the user's machine and ROS 2 installation, not this project's: nothing to check here.
OWN = ("icnet_ros", "icnet_bench", "icnet_train")   # the packages whose modules `python -m` runs

ENVIRONMENT = {
    "cd": "a shell builtin", "export": "a shell builtin", "source": "a shell builtin", ".": "a shell builtin",
    "echo": "a shell builtin", "mkdir": "coreutils", "cp": "coreutils", "rm": "coreutils", "ls": "coreutils",
    "cat": "coreutils", "touch": "coreutils",
    "git": "the user's clone", "apt": "the system's packages", "apt-get": "the system's packages",
    "rosdep": "ROS 2's dependency tool (its keys: test_colcon_layout.py)",
}
# ros2cli's own verbs on names the user chooses (the verbs that touch this package are checked).
ROS2_VERBS = {"topic", "pkg", "node", "service", "bag", "interface", "doctor", "daemon", "action", "multicast"}


def ros2_problem(args: list[str]) -> str | None:
    from icnet_ros.ros.parameters import PARAMETERS

    verb, rest = (args[0], args[1:]) if args else ("", [])
    if verb == "launch":
        package, launch_file, *arguments = rest
        if package != package_name():
            return f"ros2 launch of another package {package}"
        path = REPO / "launch" / launch_file
        if not path.is_file():
            return f"no launch file {launch_file}"
        declared = launch_arguments(path)
        unknown = [a for a in arguments if a.split(":=", 1)[0] not in declared]
        return f"{launch_file} declares no {unknown}" if unknown else None
    if verb == "run":
        package, executable, *arguments = rest
        if package != package_name():
            return None   # the user's own package (the camera driver)
        if executable not in console_scripts():
            return f"no executable {executable}"
        return ros_arguments_problem(arguments)
    if verb == "param" and rest[:1] in (["dump"], ["list"]):
        return None if len(rest) == 2 else f"ros2 param {' '.join(rest)}: expects one node name"
    if verb == "param":
        names = {spec.name for spec in PARAMETERS} | {"class_names"}
        if len(rest) < 3 or rest[2] not in names:
            return f"ros2 param {' '.join(rest)}: no such parameter"
        return None
    if verb == "lifecycle" and rest[:1] in (["get"], ["list"], ["nodes"]):
        return None
    if verb == "lifecycle":
        return None if rest[-1] in LIFECYCLE_TRANSITIONS else f"no lifecycle transition {rest[-1]}"
    if verb in ROS2_VERBS:
        return None
    return f"ros2 {verb}: no check for this verb (add one to docs_check.py)"


def pip_problem(args: list[str]) -> str | None:
    for flag, value in zip(args, args[1:]):
        if flag in ("-c", "-r") and not (REPO / value.replace("src/icnet_ros/", "", 1)).is_file():
            return f"{flag} {value}: no such file in the package"
    return None


def make_problem(args: list[str]) -> str | None:
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    missing = [a for a in args if not a.startswith("-") and a not in targets]
    return f"no make target {missing}" if missing else None


def pytest_problem(args: list[str]) -> str | None:
    missing = [a for a in args if not a.startswith("-") and "/" in a and not (REPO / a.split("::")[0]).exists()]
    return f"no test path {missing}" if missing else None


def torchrun_problem(args: list[str]) -> str | None:
    from torch.distributed.run import get_args_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            parsed = get_args_parser().parse_args(args)
    except SystemExit:
        return f"torchrun refuses {args}"
    if not parsed.module:
        return "torchrun without -m: the docs run the package as a module"
    return run_module(parsed.training_script, parsed.training_script_args)


def script_problem(path: str, args: list[str]) -> str | None:
    script = REPO / path
    if not script.is_file():
        return f"no script {path}"
    text = script.read_text()
    unknown = [a for a in args if a.startswith("-") and a.split("=")[0] not in text]
    return f"{path} never reads {unknown}" if unknown else None


def command_problem(argv: list[str]) -> str | None:
    """Why ``argv``, as a doc writes it, would not run as written, or None."""
    tool, args = argv[0], argv[1:]
    if tool == "sudo" and args:
        return command_problem(args)
    if tool in ENVIRONMENT:
        return None
    if tool in ("pip", "pip3") or (tool in ("python", "python3") and args[:2] == ["-m", "pip"]):
        return pip_problem(args)
    if tool in ("python", "python3") and args[:2] == ["-m", "colcon"]:
        return command_problem(args[1:])
    if tool == "colcon":
        selected = args[args.index("--packages-select") + 1:] if "--packages-select" in args else []
        return None if selected == [package_name()] else f"colcon {args}: not this package ({package_name()})"
    if tool == "make":
        return make_problem(args)
    if tool == "ros2":
        return ros2_problem(args)
    if tool == "segmentation_node":
        return ros_arguments_problem(args)
    if tool in console_scripts():
        return run_console_script(tool, args)
    if tool == "pytest" or (tool in ("python", "python3") and args[:2] == ["-m", "pytest"]):
        return pytest_problem(args[2:] if tool != "pytest" else args)
    if tool in ("python", "python3") and args[1:2] == ["venv"]:
        return None   # the standard library's
    if tool in ("python", "python3") and args[:1] == ["-m"] and args[1].split(".")[0] in OWN:
        return run_module(args[1], args[2:])
    if tool == "torchrun":
        return torchrun_problem(args)
    if "/" in tool and not tool.startswith("<"):
        return script_problem(tool, args)
    return f"{tool}: no check for this command (add one to docs_check.py, or allow the block with a reason)"


# ----------------------------------------------------------------------------- figures

RESULTS_FILE = re.compile(r"(?:bench/results|docs/[\w-]+)/[\w.*-]+\.(?:json|md|csv|\*)")
FIGURE = re.compile(r"(?<![\w.<>=≤≥])(\d+(?:\.\d+)?)\s?(ms|s|MiB|MB|GB|GiB|fps|frames/s|%|Hz)(?![\w/])")
TABLE_NUMBER = re.compile(r"(?<![\w.<>=≤≥])(\d+\.\d+)(?![\w.])")
MEASURED = re.compile(r"\b(measured|median|p50|p90|p99)\b", re.I)


@dataclass(frozen=True)
class Unit:
    """A paragraph, a list item or a table (with its caption) of a doc, outside code."""

    path: Path
    line: int
    text: str
    files: tuple[str, ...]    # results files named here or in the closest unit above in its section

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def prose(self) -> str:
        """The text without inline code (parameter values, key names, commands)."""
        return re.sub(r"`[^`]*`", "", self.text)

    @property
    def reads_as_measurement(self) -> bool:
        return bool(MEASURED.search(self.prose))

    def figures(self) -> list[str]:
        """Numbers with a unit of measurement, and in tables every decimal number."""
        found = [f"{value} {unit}" for value, unit in FIGURE.findall(self.prose)]
        rows = "\n".join(line for line in self.prose.splitlines() if line.startswith("|"))
        found += TABLE_NUMBER.findall(rows)
        return found


def units(path: Path) -> list[Unit]:
    text = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), path.read_text(), flags=re.M | re.S)
    raw: list[tuple[int, list[str], str]] = []   # (line, lines, kind) with kind para, table or heading
    current: list[str] = []
    start, kind, blank_after = 0, "", False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("|"):
            if kind == "table":
                current.append(line)
                continue
            if kind == "para" or (raw and raw[-1][2] == "para" and blank_after):
                if kind != "para":   # the caption just above, across one blank line
                    start, current, _ = raw.pop()
                kind = "table"
                current.append(line)
                continue
            if current:
                raw.append((start, current, kind))
            start, current, kind = number, [line], "table"
            continue
        if kind == "table" and current:
            raw.append((start, current, kind))
            current, kind = [], ""
        if line.startswith("#") or not line.strip():
            if current:
                raw.append((start, current, kind))
            current, kind, blank_after = [], "", not line.startswith("#")
            if line.startswith("#"):
                raw.append((number, [line], "heading"))
            continue
        blank_after = False
        if re.match(r"\s*(?:[-*]|\d+\.)\s", line) and current:
            raw.append((start, current, kind))
            current = []
        if not current:
            start, kind = number, "para"
        current.append(line.strip() if kind == "para" else line)
    if current:
        raw.append((start, current, kind))
    result, scope = [], ()
    for line, lines, kind in raw:
        if kind == "heading":
            scope = ()
            continue
        body = "\n".join(lines)
        named = tuple(RESULTS_FILE.findall(body))
        scope = tuple(dict.fromkeys(named + scope)) if named else scope
        result.append(Unit(path, line, body, scope))
    return result


def results_paths(reference: str) -> list[Path]:
    return [Path(p) for p in sorted(glob.glob(str(REPO / reference)))]


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_numbers_cache: dict[Path, list[float]] = {}


def numbers_in(path: Path) -> list[float]:
    if path not in _numbers_cache:
        _numbers_cache[path] = [float(n) for n in _NUMBER.findall(path.read_text())]
    return _numbers_cache[path]


# A figure may be in the file in another unit: seconds for ms, bytes or KiB for MiB, a fraction for %.
SCALES = (1.0, 1e3, 1e-3, 2.0**-20, 2.0**-10, 1e-6, 100.0)


def holds(value: str, numbers: list[float]) -> bool:
    """Whether a number in ``numbers`` is ``value`` as the doc rounds it (its decimals), in some unit."""
    number = value.split()[0]
    decimals = len(number.split(".")[1]) if "." in number else 0
    target, tolerance = float(number), 0.5 * 10.0**-decimals + 1e-9
    return any(abs(n * scale - target) <= tolerance for n in numbers for scale in SCALES)


# ----------------------------------------------------------------------------- parameters

def doc_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value or '""'
    if isinstance(value, list):
        return "[]" if not value else str(value)
    return str(value)


def _values(spec) -> str:
    if spec.choices:
        return ", ".join(f"`{c}`" for c in spec.choices)
    if spec.int_range:
        return f"{spec.int_range[0]}..{spec.int_range[1]}"
    if spec.float_range:
        return f"{spec.float_range[0]:g}..{spec.float_range[1]:g}"
    return "true, false" if isinstance(spec.default, bool) else ""


def parameter_table() -> str:
    from icnet_ros.ros.parameters import CLASS_NAMES_DESCRIPTION, PARAMETERS

    rows = ["| parameter | default | | values | meaning |", "|---|---|---|---|---|"]
    for spec in PARAMETERS:
        mutability = "read-only" if spec.read_only else "run time"
        rows.append(f"| `{spec.name}` | `{doc_value(spec.default)}` | {mutability} | {_values(spec)} | "
                    f"{spec.description} |")
    rows.append(f"| `class_names` | from the label set | read-only | | {CLASS_NAMES_DESCRIPTION}; declared on configure |")
    return "\n".join(rows)


def parameter_doc() -> str:
    """docs/parameters.md with its table generated anew."""
    text = PARAMETER_DOC.read_text()
    head, rest = text.split(TABLE_START + "\n", 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{parameter_table()}\n{TABLE_END}{tail}"


def parameter_file() -> str:
    """config/icnet.yaml: every parameter with its default; meanings in docs/parameters.md."""
    from icnet_ros.ros.parameters import PARAMETERS

    def yaml_value(value) -> str:
        if isinstance(value, str):
            return f'"{value}"'
        return doc_value(value)

    lines = [
        "# Parameters of the icnet_segmenter node, every one with its default. What each does:",
        "# docs/parameters.md, or `ros2 param describe /icnet_segmenter <name>`. Generated from the",
        "# node's declarations (icnet_ros/ros/parameters.py) by `python test/package/docs_check.py --write`.",
        "# The '/**/' key matches the node in any namespace; a bare 'icnet_segmenter:' key would be",
        "# silently ignored once the node runs in a namespace (two cameras).",
        "/**/icnet_segmenter:",
        "  ros__parameters:",
        "    # --- read-only: fixed for the node's lifetime ---",
    ]
    run_time = False
    for spec in PARAMETERS:
        if not spec.read_only and not run_time:
            lines.append("    # --- changeable at run time (ros2 param set) ---")
            run_time = True
        lines.append(f"    {spec.name}: {yaml_value(spec.default)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python test/package/docs_check.py --write   (rewrites the generated parameter docs)")
    PARAMETER_DOC.write_text(parameter_doc())
    PARAMETER_FILE.write_text(parameter_file())
    print(f"wrote {PARAMETER_DOC.relative_to(REPO)} and {PARAMETER_FILE.relative_to(REPO)}")
