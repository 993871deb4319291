"""template.yaml and the ASL it deploys: the promises the stack makes, checked on the source of truth."""

import json
import re

import pytest

from seqlane.local.stack import load_template
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]


def resources_of(kind: str) -> dict:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def state_machines() -> dict:
    return resources_of("AWS::Serverless::StateMachine")


@pytest.mark.parametrize("name", sorted(state_machines()))
def test_state_machine_every_placeholder_has_a_definition_substitution(name):
    # Given the ASL file a state machine deploys
    props = state_machines()[name]["Properties"]
    definition = (ROOT / props["DefinitionUri"]).read_text()

    # When its ${...} placeholders are compared with the DefinitionSubstitutions
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition))

    # Then each placeholder is substituted and no substitution is unused
    assert placeholders == set(props["DefinitionSubstitutions"])


@pytest.mark.parametrize("name", sorted(state_machines()))
def test_state_machine_names_no_arn_literally(name):
    # Given the ASL, every ARN comes through a substitution, so the file deploys to any partition and region
    definition = json.loads((ROOT / state_machines()[name]["Properties"]["DefinitionUri"]).read_text())
    literal_arns = re.findall(r'"arn:aws[^"]*"', json.dumps(definition))
    assert literal_arns == []


def test_state_machine_is_standard_for_batch_sync():
    # batch:submitJob.sync is not supported by Express workflows
    for machine in state_machines().values():
        assert machine["Properties"]["Type"] == "STANDARD"


@pytest.mark.parametrize("name", sorted(resources_of("AWS::S3::Bucket")))
def test_bucket_is_encrypted_private_and_tls_only(name):
    props = RESOURCES[name]["Properties"]
    # Then default encryption, every public access block, and a policy denying non-TLS requests
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    policies = [
        r["Properties"]["PolicyDocument"]
        for r in resources_of("AWS::S3::BucketPolicy").values()
        if r["Properties"]["Bucket"] == {"Ref": name}
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for policy in policies
        for s in policy["Statement"]
    )


def test_dragen_job_definition_takes_a_whole_f2_6xlarge():
    # Given the compute environment's instance type and the job's resource requirements
    (environment,) = resources_of("AWS::Batch::ComputeEnvironment").values()
    (job,) = resources_of("AWS::Batch::JobDefinition").values()
    requirements = {
        r["Type"]: int(r["Value"]) for r in job["Properties"]["ContainerProperties"]["ResourceRequirements"]
    }

    # Then one job asks for all 24 vCPUs and just under 256 GiB, so one job runs per FPGA
    assert environment["Properties"]["ComputeResources"]["InstanceTypes"] == ["f2.6xlarge"]
    assert requirements["VCPU"] == 24
    assert 230 * 1024 <= requirements["MEMORY"] < 256 * 1024


def test_dragen_job_definition_retries_only_host_loss():
    (job,) = resources_of("AWS::Batch::JobDefinition").values()
    rules = job["Properties"]["RetryStrategy"]["EvaluateOnExit"]
    assert rules[0] == {"OnStatusReason": "Host EC2*", "Action": "RETRY"}
    assert rules[-1] == {"OnReason": "*", "Action": "EXIT"}


def _statements():
    for name, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in props.get("Policies", []) if "PolicyDocument" in p]
        documents += [p for p in props.get("Policies", []) if "Statement" in p]
        for document in documents:
            for statement in document["Statement"]:
                yield name, statement


def test_iam_never_allows_writes_on_everything():
    # Wildcard resources are allowed only for read-style calls that cannot be scoped (DescribeJobs, log delivery)
    for name, statement in _statements():
        if statement["Effect"] == "Allow" and statement["Resource"] == "*":
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(a.startswith(("batch:Describe", "batch:Terminate", "logs:")) for a in actions), name


def test_iam_nothing_may_delete_or_overwrite_ingested_fastqs():
    # Given every Allow statement of every role
    for name, statement in _statements():
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = json.dumps(statement.get("Resource"))
        # Then no role can put or delete objects in the ingest bucket
        if "IngestBucket" in resources:
            assert not any(a.startswith(("s3:Put", "s3:Delete", "s3:*")) for a in actions), name


def test_iam_every_role_is_pinned_to_its_region():
    roles = {
        name
        for name, r in RESOURCES.items()
        if r["Type"] in {"AWS::Serverless::Function", "AWS::IAM::Role", "AWS::Serverless::StateMachine"}
    }
    pinned = {
        name
        for name, statement in _statements()
        if statement["Effect"] == "Deny" and "aws:RequestedRegion" in json.dumps(statement.get("Condition"))
    }
    # The EC2 instance role only carries AWS managed policies for ECS/SSM
    assert roles - pinned == {"DragenInstanceRole"}
