"""CloudWatch Logs keeps the sandbox's time, as the rest of the sandbox does.

AWS accepts log events from 14 days before to 2 hours after its own clock. The sandbox's clock is AWS's
clock for everything the runbook compares (PITR, exports, streams); a test that advanced it (e.g. by a day,
for an export window) must not make the application's change log fall outside what CloudWatch accepts.
"""

from __future__ import annotations


def test_events_stamped_on_the_sandbox_clock_are_accepted_after_it_advanced(sandbox, aws, unique_name):
    group, stream = f"/test/{unique_name}", "app"
    aws.logs.create_log_group(logGroupName=group)
    aws.logs.create_log_stream(logGroupName=group, logStreamName=stream)
    sandbox.advance(3 * 3600)  # more than CloudWatch's 2 hours of tolerance for events "in the future"
    stamp = int(sandbox.now().timestamp() * 1000)

    answer = aws.logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": stamp, "message": "itemChange"}]
    )

    assert "rejectedLogEventsInfo" not in answer
    found = aws.logs.filter_log_events(logGroupName=group, startTime=stamp - 1000, endTime=stamp + 1000)
    assert [e["message"] for e in found["events"]] == ["itemChange"]


def test_events_older_than_14_days_on_the_sandbox_clock_are_still_rejected(sandbox, aws, unique_name):
    group, stream = f"/test/{unique_name}", "app"
    aws.logs.create_log_group(logGroupName=group)
    aws.logs.create_log_stream(logGroupName=group, logStreamName=stream)
    stale = int((sandbox.now().timestamp() - 15 * 86400) * 1000)

    answer = aws.logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": stale, "message": "old"}]
    )

    assert answer["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0}
