"""``rftgrade export nova-lambda GRADER --out DIR``: a deployable AWS Nova reward Lambda."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["export_app"]

export_app = typer.Typer(help="Package a grader for a managed RFT service.", no_args_is_help=True)

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
