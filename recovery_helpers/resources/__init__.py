"""What several steps share: DynamoDB (PITR window), IAM, the read-only switch, policies, write probes, exports.

Nothing here imports a step module, and this package's ``__init__`` imports nothing, so that
``appkit`` can use ``resources.readonly`` (stdlib + boto3) without pulling in the runbook.
"""
