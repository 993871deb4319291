"""Deploy the real template.yaml into moto: SAM -> CloudFormation offline, then moto's CloudFormation creates the stack.

Nothing here re-declares a resource. What the template says is what exists locally, with the adjustments moto needs:
- code and ASL are referenced from local folders, so they are zipped/inlined first (as `sam package` would upload them);
- SQS event source mappings are not created (moto would hand the messages to its echo Lambda and delete them);
  they are returned instead, for `seqlane.local.delivery` to invoke the same handlers in-process;
- what moto's CloudFormation ignores is applied from the template after creation: DefinitionSubstitutions, bucket
  EventBridge notifications, and state machines created where moto can execute them.
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

STAGING_BUCKET = "seqlane-local-staging"
REFERENCE_BUCKET = "seqlane-local-references"
STACK_NAME = "seqlane-local"
_SUBSTITUTION_OUTPUT = "SeqlaneLocalSubstitution"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    physical_name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]


@dataclass(frozen=True)
class QueueSubscription:
    """An SQS event source mapping of the template: messages of `queue_url` go to `function`."""

    queue_url: str
    queue_arn: str
    function: FunctionSpec
    batch_size: int
    report_batch_item_failures: bool


@dataclass
class LocalStack:
    region: str
    template_dir: Path
    resources: dict[str, str]  # logical id -> physical id
    outputs: dict[str, str]
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    subscriptions: list[QueueSubscription] = field(default_factory=list)

    def physical(self, logical_id: str) -> str:
        return self.resources[logical_id]


class _NoManagedPolicies:
    """samtranslator asks for AWS managed policy ARNs only when a function names one by its short name."""

    def load(self) -> dict[str, str]:
        return {}


def load_template(template_path: Path) -> dict[str, Any]:
    from cfnlint.decode import decode

    template, matches = decode(str(template_path))
    if template is None:
        raise ValueError(f"{template_path} cannot be parsed: {matches}")
    return template


def _zip_dir(directory: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, prefix + path.relative_to(directory).as_posix())
    return buffer.getvalue()


def _package(template: dict[str, Any], template_dir: Path, s3) -> dict[str, Any]:
    """What `sam package` does, into the local staging bucket; ASL files are inlined."""
    packaged = copy.deepcopy(template)
    for logical_id, resource in packaged["Resources"].items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::Serverless::Function":
            key = f"code/{logical_id}.zip"
            s3.put_object(Bucket=STAGING_BUCKET, Key=key, Body=_zip_dir(template_dir / props["CodeUri"]))
            props["CodeUri"] = f"s3://{STAGING_BUCKET}/{key}"
        elif kind == "AWS::Serverless::LayerVersion":
            key = f"layers/{logical_id}.zip"
            body = _zip_dir(template_dir / props["ContentUri"], prefix="python/")
            s3.put_object(Bucket=STAGING_BUCKET, Key=key, Body=body)
            props["ContentUri"] = f"s3://{STAGING_BUCKET}/{key}"
        elif kind == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["Definition"] = json.loads((template_dir / props.pop("DefinitionUri")).read_text())
    return packaged


def _defer_substitutions(logical_id: str, props: dict[str, Any], outputs: dict[str, Any]) -> str:
    """moto's CloudFormation ignores DefinitionSubstitutions. Each value becomes a stack output, resolved by
    CloudFormation like any other; `_substitute` applies them after creation, as Step Functions would."""
    definition = props.pop("DefinitionString", None)
    if definition is None:
        definition = json.dumps(props.pop("Definition"))
    if isinstance(definition, dict) and "Fn::Join" in definition:
        separator, parts = definition["Fn::Join"]
        definition = separator.join(parts)
    for name, value in props.pop("DefinitionSubstitutions", {}).items():
        outputs[f"{_SUBSTITUTION_OUTPUT}{logical_id}{name}"] = {"Value": value}
    props["DefinitionString"] = definition
    return definition


def _substitute(definition: str, logical_id: str, stack_outputs: dict[str, str]) -> str:
    prefix = f"{_SUBSTITUTION_OUTPUT}{logical_id}"

    def value_of(match: re.Match) -> str:
        name = match.group(1)
        if prefix + name not in stack_outputs:
            raise KeyError(f"state machine {logical_id}: no DefinitionSubstitutions entry for ${{{name}}}")
        return stack_outputs[prefix + name]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", value_of, definition)


def transform(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform as sam_transform

    return sam_transform(copy.deepcopy(template), parameters, _NoManagedPolicies())


def deploy(
    template_path: Path,
    region: str,
    parameters: dict[str, str] | None = None,
    stack_name: str = STACK_NAME,
) -> LocalStack:
    """Create the whole stack of `template_path` in the (already running) moto, and describe what was made."""
    template_dir = template_path.parent
    s3 = boto3.client("s3", region_name=region)
    _create_bucket(s3, STAGING_BUCKET, region)
    parameter_values = {**_local_network(region), **(parameters or {})}

    template = load_template(template_path)
    cfn_template = transform(_package(template, template_dir, s3), parameter_values)
    mappings, definitions = {}, {}
    outputs = cfn_template.setdefault("Outputs", {})
    for logical_id, resource in list(cfn_template["Resources"].items()):
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            mappings[logical_id] = cfn_template["Resources"].pop(logical_id)["Properties"]
        elif resource["Type"] == "AWS::StepFunctions::StateMachine":
            definitions[logical_id] = _defer_substitutions(logical_id, resource["Properties"], outputs)

    cloudformation = boto3.client("cloudformation", region_name=region)
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameter_values.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"local stack {stack_name} is {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        for r in page["StackResourceSummaries"]
    }
    stack_outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for logical_id, resource in cfn_template["Resources"].items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            definition = _substitute(definitions[logical_id], logical_id, stack_outputs)
            _expose_state_machine(resources[logical_id], definition, region)
        elif resource["Type"] == "AWS::S3::Bucket":
            _apply_bucket_notifications(s3, resources[logical_id], resource["Properties"])
    local = LocalStack(
        region=region,
        template_dir=template_dir,
        resources=resources,
        outputs={k: v for k, v in stack_outputs.items() if not k.startswith(_SUBSTITUTION_OUTPUT)},
    )
    _describe_functions(local, template, region)
    _describe_subscriptions(local, cfn_template, mappings, region)
    return local


def _expose_state_machine(arn: str, definition: str, region: str) -> None:
    """moto's CloudFormation creates state machines in a backend that cannot execute them: create it (same name,
    so the same ARN) where executions run, with its substituted definition."""
    from moto.stepfunctions.models import stepfunctions_backends

    account_id = arn.split(":")[4]
    created = stepfunctions_backends[account_id][region].describe_state_machine(arn)
    boto3.client("stepfunctions", region_name=region).create_state_machine(
        name=created.name, definition=definition, roleArn=created.roleArn, type="STANDARD"
    )


def _apply_bucket_notifications(s3, bucket: str, props: dict[str, Any]) -> None:
    """moto's CloudFormation does not apply a bucket's NotificationConfiguration; the API call does the same."""
    notifications = props.get("NotificationConfiguration", {})
    unsupported = set(notifications) - {"EventBridgeConfiguration"}
    if unsupported:
        raise NotImplementedError(f"local stack: bucket notifications {sorted(unsupported)} are not wired")
    if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )


def _create_bucket(s3, name: str, region: str) -> None:
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **kwargs)


def _local_network(region: str) -> dict[str, str]:
    """The template's network and AMI parameters, satisfied by moto's own VPC and images."""
    ec2 = boto3.client("ec2", region_name=region)
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    group_id = ec2.create_security_group(GroupName="seqlane-dragen", Description="DRAGEN", VpcId=vpc_id)["GroupId"]
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    s3 = boto3.client("s3", region_name=region)
    _create_bucket(s3, REFERENCE_BUCKET, region)
    # Present in every account that has used Batch; the template names it explicitly.
    boto3.client("iam", region_name=region).create_role(
        RoleName="AWSServiceRoleForBatch",
        Path="/aws-service-role/batch.amazonaws.com/",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "batch.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    return {
        "Subnets": subnet_id,
        "SecurityGroups": group_id,
        "DragenAmiId": image_id,
        "JobImage": "seqlane-runner:local",
        "ReferenceUri": f"s3://{REFERENCE_BUCKET}/reference/",
        "ReferenceBucketName": REFERENCE_BUCKET,
    }


def _describe_functions(local: LocalStack, template: dict[str, Any], region: str) -> None:
    lambda_client = boto3.client("lambda", region_name=region)
    globals_ = template.get("Globals", {}).get("Function", {})
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = {**globals_, **resource["Properties"]}
        physical_name = local.physical(logical_id)
        configuration = lambda_client.get_function_configuration(FunctionName=physical_name)
        local.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            physical_name=physical_name,
            code_dir=local.template_dir / props["CodeUri"],
            handler=props["Handler"],
            environment=configuration.get("Environment", {}).get("Variables", {}),
        )


def _describe_subscriptions(
    local: LocalStack, cfn_template: dict[str, Any], mappings: dict[str, dict[str, Any]], region: str
) -> None:
    sqs = boto3.client("sqs", region_name=region)
    queues_by_arn = {}
    for logical_id, resource in cfn_template["Resources"].items():
        if resource["Type"] == "AWS::SQS::Queue":
            url = local.physical(logical_id)
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            queues_by_arn[logical_id] = (url, arn)
    for props in mappings.values():
        queue_logical_id = props["EventSourceArn"]["Fn::GetAtt"][0]
        function_logical_id = props["FunctionName"]["Ref"]
        url, arn = queues_by_arn[queue_logical_id]
        local.subscriptions.append(
            QueueSubscription(
                queue_url=url,
                queue_arn=arn,
                function=local.functions[function_logical_id],
                batch_size=int(props.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            )
        )
