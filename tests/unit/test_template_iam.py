"""IAM and resource policies of the stack as CloudFormation creates it: template.yaml after the SAM transform.

The transform is where SAM adds what the template does not say (managed policies for SQS events and tracing, generated
roles), so these promises are checked on its output, offline, with samtranslator as `sam deploy` runs it.
"""

import copy
import json
import re

import pytest
from samtranslator.translator.transform import transform

from seqlane.local.stack import load_template
from tests.conftest import REGION, ROOT

SOURCE = load_template(ROOT / "template.yaml")

# Actions that have no resource type in IAM, so they can only be granted on "*"; each is read-only or telemetry.
UNSCOPABLE = {
    "batch:DescribeJobs": "Batch DescribeJobs has no resource type (the .sync integration polls it)",
    "xray:PutTraceSegments": "X-Ray telemetry of Lambda and Step Functions tracing; no resource type",
    "xray:PutTelemetryRecords": "X-Ray telemetry; no resource type",
    "xray:GetSamplingRules": "X-Ray sampling for Step Functions tracing; no resource type",
    "xray:GetSamplingTargets": "X-Ray sampling for Step Functions tracing; no resource type",
    "logs:CreateLogDelivery": "Step Functions execution logging (vended logs): the delivery actions take no resource",
    "logs:GetLogDelivery": "vended log delivery",
    "logs:UpdateLogDelivery": "vended log delivery",
    "logs:DeleteLogDelivery": "vended log delivery",
    "logs:ListLogDeliveries": "vended log delivery",
    "logs:PutResourcePolicy": "vended log delivery writes the log group's resource policy",
    "logs:DescribeResourcePolicies": "vended log delivery",
    "logs:DescribeLogGroups": "vended log delivery",
}
# AWS managed policies any role may carry, and which role: the ECS and SSM agents of the DRAGEN instances.
AWS_MANAGED = {
    "service-role/AmazonEC2ContainerServiceforEC2Role": {"DragenInstanceRole"},
    "AmazonSSMManagedInstanceCore": {"DragenInstanceRole"},
}
WRITE_VERBS = re.compile(
    r":(Put|Delete|Send|Update|Create|Terminate|Submit|Start|Stop|Write|Batch|Change|Attach|Detach|Set|Tag|Untag"
    r"|Modify|Remove|Add|Register|Deregister|Invoke|Publish|Upload|Restore|Replicate|Abort|Cancel)"
)


class _RealManagedPolicies:
    """samtranslator's managed-policy loader, answering as IAM would (name -> ARN), so nothing is hidden by an
    empty answer."""

    def load(self) -> dict[str, str]:
        names = [
            "AWSLambdaBasicExecutionRole",
            "AWSLambdaSQSQueueExecutionRole",
            "AWSXrayWriteOnlyAccess",
            "AWSXRayDaemonWriteAccess",
            "AWSStepFunctionsFullAccess",
        ]
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in names}


@pytest.fixture(scope="module")
def stack() -> dict:
    """template.yaml transformed to CloudFormation; code and ASL locations stand in for what `sam package` uploads."""
    template = copy.deepcopy(SOURCE)
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if key in props:
                props[key] = f"s3://staging/{logical_id}/{key}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        return transform(template, {}, _RealManagedPolicies())


def of_type(stack: dict, kind: str) -> dict:
    return {name: r for name, r in stack["Resources"].items() if r["Type"] == kind}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def statements_of_role(stack: dict, role: str) -> list[dict]:
    """Inline statements of the role, and those of the stack's own managed policies and policies attached to it."""
    props = stack["Resources"][role]["Properties"]
    statements = [s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for arn in props.get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and "Ref" in arn:
            statements += stack["Resources"][arn["Ref"]]["Properties"]["PolicyDocument"]["Statement"]
    for policy in of_type(stack, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"].get("Roles", []):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def all_role_statements(stack: dict):
    for role in of_type(stack, "AWS::IAM::Role"):
        for statement in statements_of_role(stack, role):
            yield role, statement


def test_iam_every_function_and_state_machine_has_a_declared_role(stack):
    # SAM generates a role (with AWS managed policies) for a function or state machine without `Role`
    for name, resource in SOURCE["Resources"].items():
        if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
            assert "Role" in resource["Properties"] and "Policies" not in resource["Properties"], name
    # Then the transform creates no role the template does not declare
    declared = {n for n, r in SOURCE["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert set(of_type(stack, "AWS::IAM::Role")) == declared


def test_iam_no_managed_policy_but_the_instance_agents_and_the_stacks_own(stack):
    for role, resource in of_type(stack, "AWS::IAM::Role").items():
        for arn in resource["Properties"].get("ManagedPolicyArns", []):
            if isinstance(arn, dict) and "Ref" in arn:
                assert stack["Resources"][arn["Ref"]]["Type"] == "AWS::IAM::ManagedPolicy", role
                continue
            (name,) = re.findall(r":policy/(.+)$", json.dumps(arn).strip('"}'))
            assert role in AWS_MANAGED.get(name, set()), f"{role} carries the AWS managed policy {name}"


def test_iam_allows_nothing_on_every_resource_but_unscopable_reads_and_telemetry(stack):
    for role, statement in all_role_statements(stack):
        if statement["Effect"] != "Allow":
            continue
        assert "NotAction" not in statement and "NotResource" not in statement, role
        actions = as_list(statement["Action"])
        # No wildcard action anywhere
        assert not any("*" in action for action in actions), (role, statement.get("Sid"))
        if "*" in as_list(statement["Resource"]):
            # Then every action on "*" is one IAM cannot scope, and none of them writes data
            assert set(actions) <= set(UNSCOPABLE), (role, statement.get("Sid"), set(actions) - set(UNSCOPABLE))


def test_iam_unscopable_allow_list_names_no_data_write():
    # The write-style verbs in the allow-list are telemetry (X-Ray) and log delivery wiring, nothing that holds data
    writes = {action for action in UNSCOPABLE if WRITE_VERBS.search(action)}
    assert {a.split(":")[0] for a in writes} <= {"xray", "logs"}


def test_iam_every_role_is_denied_outside_its_region_without_exemptions(stack):
    for role in of_type(stack, "AWS::IAM::Role"):
        denies = [
            s
            for s in statements_of_role(stack, role)
            if s["Effect"] == "Deny" and "aws:RequestedRegion" in json.dumps(s.get("Condition"))
        ]
        # Then one deny of every action outside the stack's region: no NotAction, so no sqs:*/logs:* exemption
        assert denies == [
            {
                "Sid": "PinToRegion",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": {"Ref": "AWS::Region"}}},
            }
        ], role


def test_iam_no_region_deny_exempts_sqs(stack):
    for role, statement in all_role_statements(stack):
        if statement["Effect"] == "Deny":
            assert not any(a.startswith("sqs:") or a == "*" for a in as_list(statement.get("NotAction", []))), role


def test_iam_terminate_job_only_on_the_regions_jobs(stack):
    grants = [
        statement
        for _, statement in all_role_statements(stack)
        if statement["Effect"] == "Allow" and "batch:TerminateJob" in as_list(statement["Action"])
    ]
    assert grants
    for statement in grants:
        assert statement["Resource"] == {
            "Fn::Sub": "arn:${AWS::Partition}:batch:${AWS::Region}:${AWS::AccountId}:job/*"
        }


def test_iam_sqs_only_on_exact_queues_and_each_function_polls_its_own(stack):
    queues = set(of_type(stack, "AWS::SQS::Queue"))
    for role, statement in all_role_statements(stack):
        if statement["Effect"] == "Allow" and any(a.startswith("sqs:") for a in as_list(statement["Action"])):
            for resource in as_list(statement["Resource"]):
                assert resource.get("Fn::GetAtt", [None])[0] in queues and resource["Fn::GetAtt"][1] == "Arn", role
    # Given each event source mapping, its function's role may receive and delete on that queue
    functions = of_type(stack, "AWS::Lambda::Function")
    for mapping in of_type(stack, "AWS::Lambda::EventSourceMapping").values():
        function = functions[mapping["Properties"]["FunctionName"]["Ref"]]
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        granted = {
            action
            for statement in statements_of_role(stack, role)
            if statement["Effect"] == "Allow" and statement["Resource"] == mapping["Properties"]["EventSourceArn"]
            for action in as_list(statement["Action"])
        }
        assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= granted, role


def test_iam_ingest_sends_only_to_its_own_queue_whose_url_it_is_given(stack):
    ingest = stack["Resources"]["IngestFunction"]["Properties"]
    sends = [
        statement
        for statement in statements_of_role(stack, "IngestFunctionRole")
        if statement["Effect"] == "Allow" and "sqs:SendMessage" in as_list(statement["Action"])
    ]
    assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": ["IngestQueue", "Arn"]}]
    assert ingest["Environment"]["Variables"]["INGEST_QUEUE_URL"] == {"Ref": "IngestQueue"}
    senders = {
        role
        for role, statement in all_role_statements(stack)
        if statement["Effect"] == "Allow" and "sqs:SendMessage" in as_list(statement["Action"])
    }
    assert senders == {"IngestFunctionRole"}


def test_iam_functions_write_only_their_own_log_group(stack):
    for name, function in of_type(stack, "AWS::Lambda::Function").items():
        props = function["Properties"]
        role = props["Role"]["Fn::GetAtt"][0]
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        grants = [
            s for s in statements_of_role(stack, role) if any(a.startswith("logs:") for a in as_list(s["Action"]))
        ]
        assert grants == [
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
            }
        ], name
        assert stack["Resources"][log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_iam_nothing_may_delete_or_overwrite_ingested_fastqs(stack):
    for role, statement in all_role_statements(stack):
        if statement["Effect"] != "Allow":
            continue
        if "IngestBucket" in json.dumps(statement.get("Resource")):
            assert not any(a.startswith(("s3:Put", "s3:Delete", "s3:*")) for a in as_list(statement["Action"])), role


def test_iam_results_bucket_writes_only_under_write_once_prefixes(stack):
    writes = {
        role: statement["Resource"]
        for role, statement in all_role_statements(stack)
        if statement["Effect"] == "Allow"
        and any(a.startswith(("s3:Put", "s3:Delete", "s3:Abort")) for a in as_list(statement["Action"]))
    }
    # Then the ingest function writes manifests, the job results, and nothing else writes or deletes objects
    assert writes == {
        "IngestFunctionRole": {"Fn::Sub": "${ResultsBucket.Arn}/manifests/*"},
        "DragenJobRole": {"Fn::Sub": "${ResultsBucket.Arn}/results/*"},
    }


def _results_bucket_statements(stack: dict) -> dict[str, dict]:
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in of_type(stack, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "ResultsBucket"}
    ]
    return {s["Sid"]: s for s in policy["Statement"]}


WRITE_ONCE_PREFIXES = [{"Fn::Sub": "${ResultsBucket.Arn}/results/*"}, {"Fn::Sub": "${ResultsBucket.Arn}/manifests/*"}]


def test_results_bucket_requires_if_none_match_on_results_and_manifests(stack):
    statement = _results_bucket_statements(stack)["RequireWriteOnceResults"]
    # Then any principal's object creation there without If-None-Match is denied...
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"] == WRITE_ONCE_PREFIXES
    # ...but only the calls that create the object: CreateMultipartUpload/UploadPart/UploadPartCopy are authorized
    # as s3:PutObject too and cannot carry the header, so without this key multipart uploads would always fail
    assert statement["Condition"] == {
        "Null": {"s3:if-none-match": "true"},
        "Bool": {"s3:ObjectCreationOperation": "true"},
    }


def test_results_bucket_denies_deleting_results_and_manifests(stack):
    statement = _results_bucket_statements(stack)["DenyResultDeletes"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and "Condition" not in statement
    assert set(statement["Action"]) == {"s3:DeleteObject", "s3:DeleteObjectVersion"}
    assert statement["Resource"] == WRITE_ONCE_PREFIXES
    # Lifecycle (run by S3, not subject to the bucket policy) still cleans up incomplete multipart uploads
    rules = stack["Resources"]["ResultsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in rule for rule in rules)
