"""Event configurations through boto3, as on AWS: off in a new account, per type, gating."""

import botocore.exceptions
import pytest

from bridge_sim.aws.event_config import EVENT_TYPES
from tests.standins import control_plane


@pytest.fixture
def new_account():
    with control_plane(registry_events=False) as plane:
        yield plane


def test_a_new_account_has_every_event_type_off_and_publishes_no_registry_event(new_account):
    iot = new_account.client()
    described = iot.describe_event_configurations()
    assert set(described["eventConfigurations"]) == set(EVENT_TYPES)
    assert not any(c["Enabled"] for c in described["eventConfigurations"].values())
    iot.create_thing_group(thingGroupName="g")
    iot.create_thing(thingName="quiet")
    iot.add_thing_to_thing_group(thingGroupName="g", thingName="quiet")
    assert [t for t in new_account.captured.topics() if t.startswith("$aws/events/")] == []


def test_enabling_a_type_publishes_that_type_only(new_account):
    iot = new_account.client()
    before = iot.describe_event_configurations()["lastModifiedDate"]
    iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": True}})
    after = iot.describe_event_configurations()
    assert after["eventConfigurations"]["THING"] == {"Enabled": True}
    assert after["eventConfigurations"]["THING_GROUP_MEMBERSHIP"] == {"Enabled": False}
    assert after["lastModifiedDate"] >= before
    iot.create_thing_group(thingGroupName="g")
    iot.create_thing(thingName="loud")
    iot.add_thing_to_thing_group(thingGroupName="g", thingName="loud")
    events = [t for t in new_account.captured.topics() if t.startswith("$aws/events/")]
    assert events == ["$aws/events/thing/loud/created"]
    body = new_account.captured.last("$aws/events/thing/loud/created")
    assert (body["eventType"], body["operation"]) == ("THING_EVENT", "CREATED")
    # Turning it off again stops it; the other types keep their setting.
    iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": False}})
    iot.delete_thing(thingName="loud")
    assert "$aws/events/thing/loud/deleted" not in new_account.captured.topics()


def test_an_unknown_event_type_is_refused(new_account):
    iot = new_account.client()
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        iot.update_event_configurations(eventConfigurations={"THINGS": {"Enabled": True}})
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "THINGS is not an event type" in str(refused.value)
