"""README and the benchmark records give commands a newcomer can run as written."""

import re
import shlex
from pathlib import Path

from LiverTumorSegLib.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _commands(text: str, program: str) -> list[list[str]]:
    """Every command in `text` (code spans and code blocks) that runs `program`, split into words;
    `a && b` counts as two commands."""
    spans = re.findall(r"```bash\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text)
    commands = []
    for span in spans:
        for line in span.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                if words and Path(words[0]).name == program:
                    commands.append(words)
    return commands


def test_the_sanity_run_command_runs_from_the_repository_root():
    from LiverTumorSegLib.training.config import TrainingConfig

    record = REPO / "benchmarks" / "results" / "cpu_sanity_run"
    [command] = [c for c in _commands((record / "README.md").read_text(encoding="utf-8"),
                                      "livertumorseg") if c[1] == "train"]
    args = build_parser().parse_args(command[1:])
    config = REPO / args.config
    assert config.resolve().parent == record, "the config named is the record's, from the root"
    assert TrainingConfig.load(config).architecture.encoder_name == "resnet18"
    assert not list(record.glob("*.safetensors")), "a record, not a model"


def test_readme_never_offers_the_sanity_run_as_a_model():
    assert "sanity model" not in README


def test_cpu_only_install_pins_the_same_torch_as_the_quick_start():
    installs = [c for c in _commands(README, "pip") if "torch" in " ".join(c)]
    pins = {tuple(w for w in c if w.startswith(("torch==", "torchvision=="))) for c in installs}
    assert len(pins) == 1, f"torch pins differ between README's install commands: {pins}"
    cpu = [c for c in installs if "--index-url" in c]
    assert cpu and cpu[0][cpu[0].index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    torch_pin = next(w for w in next(iter(pins)) if w.startswith("torch=="))
    assert f"<={torch_pin.split('==')[1]}" in pyproject, "pyproject allows the pinned torch"


def test_readme_states_install_size_and_test_time():
    assert re.search(r"`\.venv` takes about [\d.]+ GB", README)
    assert re.search(r"The tests take \d+ to \d+ minutes on a 2-core CPU", README)
