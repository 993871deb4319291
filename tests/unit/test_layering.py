"""Only adapters talk to AWS: the domain and the handlers never import boto3 or botocore themselves."""

import ast

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "layers" / "seqlane"
ADAPTER_LAYER = {PACKAGE / "adapters", PACKAGE / "local", PACKAGE / "runner" / "storage.py"}
MODULES = sorted(
    [p for p in PACKAGE.rglob("*.py") if not any(p == a or a in p.parents for a in ADAPTER_LAYER)]
    + list((ROOT / "functions").glob("*/app.py"))
)


def imported_roots(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_layering_module_above_adapters_does_not_import_aws_sdk(module):
    assert not {"boto3", "botocore"} & set(imported_roots(module))
