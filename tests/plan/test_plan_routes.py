"""Translated rules as routes and endpoints, and the landing zone variables they produce."""

from __future__ import annotations

import datetime as dt

from bridge.inventory.models import Inventory, TopicRule
from bridge.plan import PlanOptions, build_plan, plan_routes
from bridge.plan.rules import translate_topic_rule

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
KINESIS = {"kinesis": {"streamName": "telemetry", "partitionKey": "k", "roleArn": "r"}}
S3 = {"s3": {"bucketName": "Archive_Bucket", "key": "k", "roleArn": "r"}}
SQS = {"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/123/orders", "roleArn": "r"}}
SNS = {"sns": {"targetArn": "arn:aws:sns:us-east-1:123:alarms", "roleArn": "r"}}
REPUBLISH = {"republish": {"topic": "out/x", "roleArn": "r"}}


def rule(name, sql="SELECT * FROM 'fleet/+/telemetry'", actions=(KINESIS,), **fields):
    return TopicRule(name=name, sql=sql, sql_version="2016-03-23", actions=list(actions), **fields)


def translate(*rules):
    return [
        translate_topic_rule(
            {
                "ruleName": r.name,
                "sql": r.sql,
                "awsIotSqlVersion": r.sql_version,
                "ruleDisabled": r.disabled,
                "actions": r.actions,
            }
        )
        for r in rules
    ]


def test_each_native_action_becomes_a_typed_endpoint_shared_by_rules():
    routing = plan_routes(
        translate(rule("b", actions=[KINESIS, S3, SQS, SNS]), rule("a", actions=[KINESIS]))
    )
    assert [r.rule_name for r in routing.rules] == ["a", "b"]
    assert {(e.type, e.target, e.name) for e in routing.endpoints} == {
        ("EventHub", "telemetry", "eh-telemetry"),
        ("StorageContainer", "archive-bucket", "sa-archive-bucket"),
        ("ServiceBusQueue", "orders", "sbq-orders"),
        ("ServiceBusTopic", "alarms", "sbt-alarms"),
    }
    assert routing.rules[0].endpoint_names == ["eh-telemetry"]
    assert routing.rules[1].route_name == "b"
    assert len(routing.rules[1].endpoint_names) == 4


def test_a_rule_with_only_non_route_actions_gets_no_route_and_says_why():
    [plan] = plan_routes(translate(rule("only_republish", actions=[REPUBLISH]))).rules
    assert plan.route_name is None
    assert any(issue.startswith("NO_ENDPOINT") for issue in plan.issues)
    [action] = plan.manual_actions
    assert action.startswith("republish -> azure_function: ")


def test_a_reserved_topic_rule_gets_no_route():
    [plan] = plan_routes(
        translate(rule("shadow", sql="SELECT * FROM '$aws/things/+/shadow/update'"))
    ).rules
    assert plan.route_name is None
    assert any(issue.startswith("SHADOW_TOPIC") for issue in plan.issues)


def test_a_disabled_rule_becomes_a_disabled_route():
    [plan] = plan_routes(translate(rule("off", disabled=True))).rules
    assert plan.route_name == "off"
    assert plan.enabled is False


def test_route_names_are_valid_and_unique_ignoring_case():
    long_name = "r" * 100
    routing = plan_routes(translate(rule(long_name), rule("Dup"), rule("dup")))
    names = [r.route_name for r in routing.rules]
    assert all(name and len(name) <= 64 for name in names)
    assert len({name.lower() for name in names}) == 3


def test_more_than_ten_custom_endpoints_is_a_plan_finding():
    rules = [rule(f"r{i}", actions=[{"kinesis": {"streamName": f"s{i}"}}]) for i in range(11)]
    inventory = Inventory(generated_at=NOW, region="us-east-1", rules=rules)
    plan = build_plan(inventory, PlanOptions()).plan
    assert [f.code for f in plan.findings] == ["ROUTING_LIMIT"]


def test_routes_on_the_body_remind_that_messages_need_a_json_content_type():
    body_rule = rule("hot", sql="SELECT * FROM 'a/b' WHERE temp > 50")
    inventory = Inventory(generated_at=NOW, region="us-east-1", rules=[body_rule])
    plan = build_plan(inventory, PlanOptions()).plan
    assert "$body.temp > 50" in plan.rules[0].condition
    assert [f.code for f in plan.findings] == ["BODY_QUERY"]


def test_tfvars_hold_the_bridge_routes_then_the_rule_routes_and_the_entities():
    inventory = Inventory(
        generated_at=NOW,
        region="eu-west-1",
        account_id="123456789012",
        rules=[
            rule("telemetry", actions=[KINESIS, S3]),
            rule("shadow", sql="SELECT * FROM '$aws/events/presence/#'"),
        ],
    )
    tfvars = build_plan(inventory, PlanOptions(location="northeurope")).tfvars
    assert tfvars["iothub_name"] == "iothub-eu-west-1-123456789012"
    assert tfvars["resource_group_name"] == "rg-iothub-eu-west-1-123456789012"
    assert tfvars["location"] == "northeurope"
    # An IoT Hub route names one endpoint: a rule with two gets a route for each.
    assert [(r["name"], r["endpoint_names"]) for r in tfvars["routes"]] == [
        ("bridge-telemetry-to-events", ["events"]),
        ("bridge-connection-state", ["events"]),
        ("bridge-twin-changes", ["events"]),
        ("telemetry", ["eh-telemetry"]),
        ("telemetry-sa-archive-bucket", ["sa-archive-bucket"]),
    ]
    assert tfvars["event_hubs"] == ["telemetry"]
    assert tfvars["storage_containers"] == ["archive-bucket", "device-import-export"]
    assert tfvars["servicebus_queues"] == tfvars["servicebus_topics"] == []
    assert len(tfvars["storage_account_name"]) <= 24
    assert tfvars["storage_account_name"].isalnum()
    assert tfvars["storage_account_name"].islower()
