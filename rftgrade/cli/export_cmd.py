"""``rftgrade export``: a grader or a dataset for another trainer or service.

``nova-lambda GRADER --out DIR``: a deployable AWS Nova reward Lambda.
``dataset DATA --trainer T -o OUT``: an OpenAI RFT dataset as verl's, TRL's or
OpenRLHF's, each row's item carried exactly (:mod:`rftgrade.integrations.trainer_data`).
``config JOB --trainer T --model M --train FILE``: the job's hyperparameters as the
trainer's launch file, the grader wired in (:mod:`rftgrade.integrations.trainer_config`).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["export_app"]

export_app = typer.Typer(
    help="Package a grader for a managed RFT service, or a dataset for a trainer.", no_args_is_help=True
)

# rftgrade's own dependencies (what ``pip install rftgrade`` brings), for the bundle.
_FALLBACK_REQUIREMENTS = [
    "pydantic>=2.7",
    "rapidfuzz>=3.0",
    "sacrebleu>=2.4",
    "nltk>=3.9",
    "rouge-score>=0.1.2",
    "numpy>=1.26",
    "typer>=0.12",
    "rich>=13",
    "openai>=1.80",
    "httpx>=0.27",
    "jsonschema>=4.20",
]

HANDLER = '''"""AWS Nova RFT reward Lambda (handler: lambda_function.lambda_handler), made by
``rftgrade export nova-lambda``. It grades with grader.json beside it."""

from rftgrade.integrations.nova import lambda_handler

__all__ = ["lambda_handler"]
'''

README = """# Nova RFT reward Lambda for grader `{name}`

Made by `rftgrade export nova-lambda`. Contents: `lambda_function.py` (the handler,
`lambda_function.lambda_handler`), `grader.json` (the grader, validated), `rftgrade/`
(the library, vendored) and `requirements.txt` (its dependencies).

Build the deployment package (on any machine; wheels for Lambda's Linux):

```bash
cd {out}
pip install -r requirements.txt -t . --platform manylinux2014_x86_64 --only-binary=:all: --python-version 3.12
zip -qr ../nova-reward.zip .
aws lambda create-function --function-name SageMaker-rftgrade-{name} --runtime python3.12 \\
  --handler lambda_function.lambda_handler --zip-file fileb://../nova-reward.zip \\
  --timeout 900 --memory-size 1024 --role arn:aws:iam::ACCOUNT:role/ROLE
```

Then give the Lambda's ARN to the RFT job (Bedrock: the reward function; SageMaker:
`reward_lambda_arn`). Each sample's answer is `{{"id", "aggregate_reward_score",
"metrics_list"}}`; a `multi` grader's sub-rewards are `Reward` metrics, and
`rftgrade_error` (1.0 for a sample that could not be graded, scored 0) a `Metric`.

**Python graders run in the Lambda's own Python, with no sandbox**: Lambda has no
Docker or bubblewrap. The Lambda is the only isolation: give its role no permissions
beyond what the grader needs. Model graders (`score_model`, `label_model`) call their
API from the Lambda: set its key (e.g. `OPENAI_API_KEY`) in the Lambda's environment.
"""


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, requires

    try:
        found = [r for r in requires("rftgrade") or [] if "extra ==" not in r]
    except PackageNotFoundError:
        found = []
    return found or list(_FALLBACK_REQUIREMENTS)


@export_app.command("nova-lambda")
def nova_lambda(
    grader: Annotated[Path, typer.Argument(help="Grader JSON file.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the bundle to (created).")],
) -> None:
    """Write an AWS Nova RFT reward Lambda for GRADER: handler, grader, library, requirements."""
    import rftgrade
    from rftgrade._exceptions import GraderValidationError
    from rftgrade._load import grader_to_dict, load_spec

    try:
        spec = load_spec(grader)
    except GraderValidationError as exc:
        typer.echo(f"error: {grader}: {exc}", err=True)
        raise typer.Exit(1) from None
    if out.exists() and any(out.iterdir()):
        typer.echo(f"error: {out} is not empty; choose a new folder", err=True)
        raise typer.Exit(1)
    out.mkdir(parents=True, exist_ok=True)
    data = grader_to_dict(spec)
    (out / "grader.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    (out / "lambda_function.py").write_text(HANDLER)
    (out / "requirements.txt").write_text("\n".join(_requirements()) + "\n")
    (out / "README.md").write_text(README.format(name=data.get("name", "grader"), out=out))
    package = Path(rftgrade.__file__).parent
    shutil.copytree(package, out / "rftgrade", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    typer.echo(
        f"wrote {out}: lambda_function.lambda_handler grading {data.get('name')!r}; see {out / 'README.md'}"
    )
    if '"type": "python"' in json.dumps(data):
        typer.echo("note: python graders run in the Lambda's own Python, without a sandbox", err=True)


_NEXT = {
    "verl": (
        "verl (docs/trainers/verl.md), with RFTGRADE_GRADER=<your grader> in its environment: "
        "data.train_files={out} (a validation file: data.val_files) reward.custom_reward_function.path={adapter} "
        "reward.custom_reward_function.name=compute_score (verl <= 0.8: custom_reward_function.path=...); "
        "the grader sees each row's item from extra_info.{key}"
    ),
    "trl": (
        'TRL: load_dataset("json", data_files="{out}")["train"] (parquet: "parquet") as '
        "train_dataset, with make_reward_function (docs/trainers/trl.md): the grader sees each "
        "row's item from the {key} column"
    ),
    "openrlhf": (
        "OpenRLHF 0.11: --data.prompt_dataset {out} --data.input_key messages --data.apply_chat_template "
        "--data.label_key item, with --reward.remote_url at rftgrade serve (older OpenRLHF: "
        "--apply_chat_template, --remote_rm_url; docs/trainers/openrlhf.md): the label is the item"
    ),
}


def _check_trainer(trainer: str) -> None:
    """``--trainer``: one of the trainers rftgrade writes for (exit 2 naming them otherwise)."""
    from rftgrade.integrations.trainer_data import TRAINERS

    if trainer not in TRAINERS:
        typer.echo(f"error: --trainer {trainer!r} is not one of: {', '.join(TRAINERS)}", err=True)
        raise typer.Exit(2)


@export_app.command("dataset")
def dataset_cmd(
    data: Annotated[Path, typer.Argument(help="An OpenAI RFT dataset (JSONL of {messages, ...} rows).")],
    trainer: Annotated[str, typer.Option("--trainer", help="The trainer: verl, trl or openrlhf.")],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="The file to write: .jsonl, or .parquet (needs pyarrow).")
    ],
    data_source: Annotated[
        str, typer.Option(help="verl's data_source column (its metrics' label).")
    ] = "rftgrade",
    tool_prompt: Annotated[
        str,
        typer.Option(
            "--tool-prompt",
            help="A row's tools: hermes writes them into its system turn as Qwen3's chat template "
            "does (an instruction to answer in <tool_call> blocks); none leaves them out of the prompt "
            "(a trainer given the tools itself).",
        ),
    ] = "hermes",
) -> None:
    """Write DATA as TRAINER's dataset: each row's prompt, and its OpenAI item exactly as graders see it."""
    from rftgrade._exceptions import DataError
    from rftgrade.integrations._tool_prompt import TOOL_PROMPTS
    from rftgrade.integrations.trainer_data import (
        ITEM_KEY,
        ExportSummary,
        read_training_rows,
        trainer_row,
        write_rows,
    )

    _check_trainer(trainer)
    if tool_prompt not in TOOL_PROMPTS:
        typer.echo(f"error: --tool-prompt is {tool_prompt!r}; use {' or '.join(TOOL_PROMPTS)}", err=True)
        raise typer.Exit(2)
    if out.suffix not in (".jsonl", ".json", ".parquet"):
        typer.echo(f"error: -o {out}: name a .jsonl or a .parquet file", err=True)
        raise typer.Exit(2)
    if not data.is_file():
        typer.echo(f"error: no data file at {data}", err=True)
        raise typer.Exit(2)
    if out.resolve() == data.resolve():
        typer.echo(
            f"error: -o {out} is the dataset itself; write the trainer's copy to another file", err=True
        )
        raise typer.Exit(2)
    summary = ExportSummary()
    # First every row is checked: a bad one, and nothing is written.
    count = sum(1 for _ in read_training_rows(data, summary, tool_prompt))
    if summary.problems:
        for problem in summary.problems[:20]:
            typer.echo(f"  {data}: {problem}", err=True)
        more = len(summary.problems) - 20
        if more > 0:
            typer.echo(f"  ... and {more} more", err=True)
        typer.echo(
            f"error: {len(summary.problems)} row(s) of {data} cannot be exported (above); nothing was written",
            err=True,
        )
        raise typer.Exit(1)
    if not count:
        typer.echo(f"error: {data} has no rows", err=True)
        raise typer.Exit(1)
    try:
        # Then read again, written as it is read.
        rows = read_training_rows(data, ExportSummary(), tool_prompt)
        written = write_rows((trainer_row(row, trainer, i, data_source) for i, row in enumerate(rows)), out)
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {written} row(s) of {data} for {trainer} to {out}")
    if summary.developer_turns:
        typer.echo(
            f"note: {summary.developer_turns} developer turn(s) written as system turns in the prompt "
            "(open models' chat templates have no developer role); the item keeps them as they were"
        )
    if summary.samples_left_out:
        typer.echo(
            f"note: {summary.samples_left_out} row(s) carried samples, which training does not use: left out"
        )
    _say_tools(summary.rows_with_tools, tool_prompt)
    if summary.rows_with_response_format:
        typer.echo(
            f"note: {summary.rows_with_response_format} row(s) have response_format: the item keeps it, the "
            "prompt does not (a job's response_format: `rftgrade export config` writes it as the trainer's "
            "structured output)"
        )
    adapter = importlib.util.find_spec("rftgrade.integrations.verl")
    where = adapter.origin if adapter is not None else "rftgrade/integrations/verl.py"
    typer.echo("next: " + _NEXT[trainer].format(out=out, key=ITEM_KEY, adapter=where))
    typer.echo(
        f"then: `rftgrade export config JOB.json --trainer {trainer} --model MODEL --train {out}` writes "
        "the launch file, with the job's hyperparameters and the grader wired in"
    )


def _say_tools(rows: int, tool_prompt: str) -> None:
    if not rows:
        return
    if tool_prompt == "hermes":
        typer.echo(
            f"note: {rows} row(s) offer tools: written into each prompt's system turn as Qwen3's chat "
            "template writes them (--tool-prompt none leaves them out, for a trainer given the tools "
            "itself); the model's <tool_call> blocks reach the grader as sample.output_tools"
        )
    else:
        typer.echo(
            f"note: {rows} row(s) offer tools: the item keeps them, the prompt does not (--tool-prompt none); "
            "show the model its tools the way the trainer does"
        )


@export_app.command("config")
def config_cmd(
    job: Annotated[
        Path, typer.Argument(help="The OpenAI RFT job (its JSON: the create body or the job object).")
    ],
    trainer: Annotated[str, typer.Option("--trainer", help="The trainer: verl, trl or openrlhf.")],
    model: Annotated[
        str, typer.Option("--model", help="The open model to train (a hub id or a local path).")
    ],
    train: Annotated[
        Path,
        typer.Option("--train", help="The training rows, from `rftgrade export dataset --trainer T`."),
    ],
    val: Annotated[
        Path | None, typer.Option("--val", help="Validation rows (exported the same way), for evaluation.")
    ] = None,
    samples_per_prompt: Annotated[
        int, typer.Option("-n", "--samples-per-prompt", min=2, help="Samples per prompt (GRPO's group).")
    ] = 8,
    port: Annotated[int, typer.Option(help="OpenRLHF: the port rftgrade serve listens on.")] = 8000,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Write the file here (default: print it).")
    ] = None,
) -> None:
    """Write the trainer's launch file for JOB: its hyperparameters in the trainer's terms, the grader wired in."""
    from rftgrade._exceptions import DataError, GraderValidationError
    from rftgrade._forms import read_grader_source
    from rftgrade._grader import validate
    from rftgrade.integrations.trainer_config import RunSetup, trainer_config

    _check_trainer(trainer)
    for option, path in (("--train", train), ("--val", val)):
        if path is not None and not path.is_file():
            typer.echo(
                f"error: {option} {path}: no such file; write it with "
                f"`rftgrade export dataset RFT.jsonl --trainer {trainer} -o {path}`",
                err=True,
            )
            raise typer.Exit(2)
    try:
        source = read_grader_source(job)
    except GraderValidationError as exc:
        typer.echo(f"error: {job}: {exc}", err=True)
        raise typer.Exit(2) from None
    # A launch file for a grader that cannot run would fail only once the trainer is up.
    report = validate(job)
    if report.problems:
        for problem in report.problems:
            typer.echo(f"  {problem}", err=True)
        typer.echo(
            f"error: {job}: the grader is invalid (above; `rftgrade validate {job}` says more)", err=True
        )
        raise typer.Exit(2)
    name = source.data.get("name") if isinstance(source.data.get("name"), str) else None
    setup = RunSetup(
        model=model,
        grader=job.resolve(),
        train=train.resolve(),
        val=val.resolve() if val is not None else None,
        samples_per_prompt=samples_per_prompt,
        grader_name=re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "grader").strip("_") or "grader",
        port=port,
    )
    adapter = importlib.util.find_spec("rftgrade.integrations.verl")
    adapter_path = (
        adapter.origin if adapter is not None and adapter.origin else "rftgrade/integrations/verl.py"
    )
    try:
        made = trainer_config(
            source,
            setup,
            trainer,
            verl_adapter=adapter_path,
            made_by=shlex.join(
                [
                    *("rftgrade", "export", "config", str(job), "--trainer", trainer, "--model", model),
                    *("--train", str(train), *(("--val", str(val)) if val is not None else ())),
                    *("-n", str(samples_per_prompt)),
                ]
            ),
        )
    except DataError as exc:
        typer.echo(f"error: {job}: the job's settings cannot be carried over:", err=True)
        for line in str(exc).splitlines():
            typer.echo(f"  - {line}", err=True)
        raise typer.Exit(2) from None
    if out is None:
        typer.echo(made.text, nl=False)
        for line in made.notes:
            typer.echo(f"note: {line}", err=True)
        return
    out.write_text(made.text, encoding="utf-8")
    if made.text.startswith("#!"):
        out.chmod(out.stat().st_mode | 0o111)
    typer.echo(
        f"wrote {trainer}'s launch file for {job} to {out}; run: {made.command.replace('FILE', str(out))}"
    )
    for setting, became in made.mapping:
        typer.echo(f"  {setting} -> {became}")
    for line in made.notes:
        typer.echo(f"note: {line}")
