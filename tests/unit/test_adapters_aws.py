"""StepFunctionsOrchestrator on moto, EventBridgePublisher's failure path with a botocore Stubber."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from seqlane.adapters.aws import EventBridgePublisher, StepFunctionsOrchestrator
from tests.conftest import REGION

NAME = "241121_A01234_0042_BHXXXXXXXX-NA12878-3f2a9c0d1e4b5a67"
INPUT = {"run_id": "241121_A01234_0042_BHXXXXXXXX", "sample_id": "NA12878", "version": "3f2a9c0d1e4b5a67"}


@pytest.fixture
def sfn(aws_credentials):
    with mock_aws():
        yield boto3.client("stepfunctions", region_name=REGION)


def create_state_machine(sfn) -> str:
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    role = "arn:aws:iam::123456789012:role/seqlane-analysis"
    return sfn.create_state_machine(name="seqlane-analysis", definition=definition, roleArn=role)["stateMachineArn"]


def test_start_analysis_starts_once_per_execution_name(sfn):
    # Given a state machine, and an execution of a name that has since ended
    orchestrator = StepFunctionsOrchestrator(create_state_machine(sfn), sfn)
    first = orchestrator.start_analysis(NAME, INPUT)
    (execution,) = sfn.list_executions(stateMachineArn=orchestrator.state_machine_arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])

    # When the name is started again, with the same input or another (Step Functions: ExecutionAlreadyExists)
    again = [orchestrator.start_analysis(NAME, INPUT), orchestrator.start_analysis(NAME, {**INPUT, "version": "v2"})]

    # Then the first call started it, the others are told it exists, and there is one execution with the input
    assert (first, again) == (True, [False, False])
    assert len(sfn.list_executions(stateMachineArn=orchestrator.state_machine_arn)["executions"]) == 1
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == INPUT


def test_start_analysis_joins_running_execution_of_same_name_and_input(sfn):
    # Given an execution of this name still running
    orchestrator = StepFunctionsOrchestrator(create_state_machine(sfn), sfn)
    assert orchestrator.start_analysis(NAME, INPUT) is True

    # When the same manifest version is started again (a redelivered ingest event)
    # Then Step Functions treats it as the same start: no error, and still one execution
    assert orchestrator.start_analysis(NAME, INPUT) is True
    assert len(sfn.list_executions(stateMachineArn=orchestrator.state_machine_arn)["executions"]) == 1


def test_start_analysis_raises_other_errors(sfn):
    # Given a state machine that does not exist
    missing = f"arn:aws:states:{REGION}:123456789012:stateMachine:missing"

    # When an analysis is started on it, Then the error is not mistaken for "already started"
    with pytest.raises(ClientError, match="StateMachineDoesNotExist"):
        StepFunctionsOrchestrator(missing, sfn).start_analysis(NAME, INPUT)


def test_event_bridge_publisher_raises_naming_detail_type_on_failed_entry(aws_credentials):
    # Given an events client whose PutEvents accepts the call but fails the entry
    client = boto3.client("events", region_name=REGION)
    entry = {"EventBusName": "seqlane-test", "Source": "seqlane", "DetailType": "AnalysisSucceeded"}
    expected = {"Entries": [{**entry, "Detail": json.dumps(INPUT, sort_keys=True)}]}
    failure = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}

    with Stubber(client) as stubber:
        stubber.add_response("put_events", failure, expected)
        # When an event is published, Then it raises, naming the detail type and the error
        with pytest.raises(RuntimeError, match=r"^AnalysisSucceeded not published: InternalFailure try again$"):
            EventBridgePublisher("seqlane-test", client).publish("AnalysisSucceeded", INPUT)
        stubber.assert_no_pending_responses()


def test_event_bridge_publisher_accepts_published_entry(aws_credentials):
    # Given an events client whose PutEvents publishes the entry
    client = boto3.client("events", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]})
        # When an event is published, Then it returns without error
        EventBridgePublisher("seqlane-test", client).publish("AnalysisSucceeded", INPUT)
        stubber.assert_no_pending_responses()
