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


# ---------------------------------------------------------------- analysis outcomes: events and alarms
FINAL_EXECUTION_STATES = ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_execution_state_rule_sends_this_state_machines_final_states_to_the_catalog_queue():
    rule = RESOURCES["ExecutionStateEventsRule"]["Properties"]
    # Step Functions emits status changes on the default bus: the rule names no other bus
    assert "EventBusName" not in rule
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": FINAL_EXECUTION_STATES, "stateMachineArn": [{"Ref": "AnalysisStateMachine"}]},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["CatalogQueue", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["CatalogDeadLetterQueue", "Arn"]}}


def test_event_queues_accept_every_rule_that_targets_them_and_nothing_else():
    (policy,) = resources_of("AWS::SQS::QueuePolicy").values()
    grants = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    # Every Allow is conditioned on the source rule
    assert all(set(s["Condition"]) == {"ArnEquals"} for s in grants)
    for name, rule in resources_of("AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            for queue_arn in (target["Arn"], target["DeadLetterConfig"]["Arn"]):
                # Then the queue policy lets this rule (and its dead-letter delivery) send to that queue
                assert any(
                    queue_arn in as_list(s["Resource"])
                    and {"Fn::GetAtt": [name, "Arn"]} in as_list(s["Condition"]["ArnEquals"]["aws:SourceArn"])
                    and s["Action"] == "sqs:SendMessage"
                    for s in grants
                ), (name, queue_arn)


def dead_letter_queues() -> set[str]:
    queues = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in resources_of("AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    }
    for rule in resources_of("AWS::Events::Rule").values():
        queues |= {t["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] for t in rule["Properties"]["Targets"]}
    return queues


def test_every_dead_letter_queue_alarms_when_a_message_waits_on_it():
    assert dead_letter_queues() == {"IngestDeadLetterQueue", "CatalogDeadLetterQueue"}
    for queue in dead_letter_queues():
        dimensions = [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        alarms = [
            a["Properties"]
            for a in resources_of("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Dimensions") == dimensions
        ]
        assert len(alarms) == 1, queue
        (alarm,) = alarms
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_every_alarm_notifies_the_alarm_topic_when_it_fires_and_when_it_clears():
    alarms = resources_of("AWS::CloudWatch::Alarm")
    assert len(alarms) == 4
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name


def test_unsuccessful_analyses_alarm_counts_failed_timed_out_and_aborted_executions_of_this_state_machine():
    alarm = RESOURCES["AnalysesUnsuccessfulAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    read = {m["MetricStat"]["Metric"]["MetricName"]: m for m in metrics.values() if "MetricStat" in m}
    assert set(read) == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    for metric in read.values():
        assert metric["MetricStat"]["Metric"]["Namespace"] == "AWS/States"
        assert metric["MetricStat"]["Metric"]["Dimensions"] == [
            {"Name": "StateMachineArn", "Value": {"Ref": "AnalysisStateMachine"}}
        ]
        assert metric["MetricStat"]["Stat"] == "Sum" and metric["ReturnData"] is False
    (total,) = [m for m in metrics.values() if m.get("ReturnData")]
    assert all(metric_id in total["Expression"] for metric_id in (m["Id"] for m in read.values()))
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_rejected_messages_alarm_reads_the_handlers_powertools_metric():
    # Powertools publishes to POWERTOOLS_METRICS_NAMESPACE with the dimension service = POWERTOOLS_SERVICE_NAME
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    alarm = RESOURCES["RejectedMessagesAlarm"]["Properties"]
    assert alarm["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}]
    assert alarm["MetricName"] == "MessageRejected"
    for name, function in resources_of("AWS::Serverless::Function").items():
        # Then every function publishes it under those names, none with its own
        assert not {"POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_SERVICE_NAME"} & set(
            function["Properties"]["Environment"]["Variables"]
        ), name
        handler = ROOT / function["Properties"]["CodeUri"] / "app.py"
        assert 'name="MessageRejected"' in handler.read_text(), name


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use_and_takes_tls_only():
    topic = RESOURCES["AlarmTopic"]["Properties"]
    # alias/aws/sns would not do: its key policy cannot let CloudWatch alarms encrypt, so they could not publish
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = RESOURCES["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(
        s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and set(s["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        for s in key["KeyPolicy"]["Statement"]
    )
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in resources_of("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": "AlarmTopic"}]
    ]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statements["DenyInsecureTransport"]["Principal"] == "*"
    publish = statements["CloudWatchAlarmsPublish"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_alarm_email_is_optional_and_the_topic_is_an_output():
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""
    (subscription,) = resources_of("AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert TEMPLATE["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


def test_execution_state_rule_routes_in_moto_only_this_state_machines_final_states(aws_credentials):
    import boto3
    from moto import mock_aws

    ours = "arn:aws:states:eu-west-2:123456789012:stateMachine:AnalysisStateMachine-abc"
    theirs = "arn:aws:states:eu-west-2:123456789012:stateMachine:other"
    rule = RESOURCES["ExecutionStateEventsRule"]["Properties"]
    pattern = json.dumps(rule["EventPattern"]).replace(json.dumps({"Ref": "AnalysisStateMachine"}), json.dumps(ours))

    def status_change(state_machine: str, status: str) -> dict:
        detail = {"executionArn": f"{state_machine}:run-1", "stateMachineArn": state_machine, "status": status}
        return {
            "Source": "aws.states",
            "DetailType": "Step Functions Execution Status Change",
            "Detail": json.dumps(detail),
        }

    with mock_aws():
        # Given the rule with the template's pattern on the default bus, targeting a queue
        sqs = boto3.client("sqs")
        events = boto3.client("events")
        queue_url = sqs.create_queue(QueueName="catalog")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="execution-states", EventPattern=pattern)
        events.put_targets(Rule="execution-states", Targets=[{"Id": "catalog-queue", "Arn": queue_arn}])

        # When this state machine's executions end in each final state, and others do not match
        for status in [*FINAL_EXECUTION_STATES, "RUNNING"]:
            events.put_events(Entries=[status_change(ours, status)])
        events.put_events(Entries=[status_change(theirs, "FAILED")])

        # Then the queue holds the four final states of this state machine only
        received = []
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                received.append(json.loads(message["Body"])["detail"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(d["status"] for d in received) == sorted(FINAL_EXECUTION_STATES)
    assert {d["stateMachineArn"] for d in received} == {ours}
