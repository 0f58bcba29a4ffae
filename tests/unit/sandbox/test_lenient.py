"""No lenient difference left (issue 14): requests DynamoDB refuses, found lenient by the conformance suite.

Each test sends, through boto3 over HTTP, what the sandbox used to accept (or answer with another error code)
and checks DynamoDB's code and message, and that nothing was created or written.
"""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import create_table, table_names


def _refusal(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]["Code"], response["Error"]["Message"]


def _table(name: str, keys: list[tuple[str, str]], **extra) -> dict:
    return {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in dict(keys)]
        + extra.pop("defs", []),
        "KeySchema": [{"AttributeName": a, "KeyType": t} for a, t in keys],
        "BillingMode": "PAY_PER_REQUEST",
        **extra,
    }


def _index(name: str, keys: list[tuple[str, str]], projection: dict) -> dict:
    return {
        "IndexName": name,
        "KeySchema": [{"AttributeName": a, "KeyType": t} for a, t in keys],
        "Projection": projection,
    }


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            _table("T", [("a", "HASH"), ("b", "HASH")]),
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
        ),
        (
            _table("T", [("a", "RANGE"), ("b", "RANGE")]),
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ),
        (
            _table(
                "T",
                [("a", "HASH")],
                defs=[{"AttributeName": "c", "AttributeType": "S"}],
                LocalSecondaryIndexes=[
                    _index("index1", [("a", "HASH"), ("c", "RANGE")], {"ProjectionType": "ALL"})
                ],
            ),
            (
                "One or more parameter values were invalid: Table KeySchema does not have a range key, which is "
                "required when specifying a LocalSecondaryIndex"
            ),
        ),
        (
            _table(
                "T",
                [("a", "HASH")],
                defs=[{"AttributeName": "c", "AttributeType": "S"}],
                GlobalSecondaryIndexes=[
                    _index("index1", [("c", "HASH")], {"ProjectionType": "ALL", "NonKeyAttributes": ["x"]})
                ],
            ),
            "One or more parameter values were invalid: ProjectionType is ALL, but NonKeyAttributes is specified",
        ),
        (
            _table(
                "T",
                [("a", "HASH")],
                defs=[{"AttributeName": "c", "AttributeType": "S"}],
                GlobalSecondaryIndexes=[_index("index1", [("c", "HASH")], {"ProjectionType": "ALL"})] * 2,
            ),
            "One or more parameter values were invalid: Duplicate index name: index1",
        ),
    ],
    ids=["two-hash-keys", "two-range-keys", "lsi-on-hash-only-table", "nonkey-with-all", "duplicate-index"],
)
def test_create_table_with_an_invalid_schema_is_refused_and_creates_nothing(
    aws, unique_name, request_, message
):
    ddb = aws.dynamodb
    code, got = _refusal(ddb.create_table, **{**request_, "TableName": unique_name})
    assert (code, got) == ("ValidationException", message)
    assert unique_name not in table_names(ddb)


def test_an_invalid_create_table_for_a_name_in_use_is_a_validation_error(aws, unique_name):
    """DynamoDB validates the request before it looks the name up: ValidationException, not ResourceInUse."""
    ddb = aws.dynamodb
    create_table(ddb, unique_name, range_key=None, pitr=False)
    code, _ = _refusal(ddb.create_table, **_table(unique_name, [("pk", "HASH"), ("x", "HASH")]))
    assert code == "ValidationException"


def _unchecked_client(aws):
    """boto3 without its own parameter checks: the request reaches the sandbox as a careless client sends it."""
    return aws.session.client(
        "dynamodb", endpoint_url=aws.endpoint_url, config=Config(parameter_validation=False)
    )


def test_an_item_over_400_kb_is_refused_before_the_table_is_looked_up(aws, unique_name):
    """DynamoDB measures the item first: ValidationException even when the table does not exist."""
    item = {"pk": {"S": "k"}, "big": {"S": "x" * 409_600}}
    code, message = _refusal(aws.dynamodb.put_item, TableName=unique_name, Item=item)
    assert (code, message) == ("ValidationException", "Item size has exceeded the maximum allowed size")


def test_batch_table_names_and_request_counts_are_checked_as_dynamodb_does(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    raw = _unchecked_client(aws)
    code, message = _refusal(raw.batch_write_item, RequestItems={table: []})
    assert code == "ValidationException"
    assert "Map value must satisfy constraint: [Member must have length less than or equal to 25" in message
    put = {"PutRequest": {"Item": {"pk": {"S": "a"}}}}
    for call, request in (
        (raw.batch_write_item, [put]),
        (raw.batch_get_item, {"Keys": [{"pk": {"S": "a"}}]}),
    ):
        code, message = _refusal(call, RequestItems={"ab": request})
        assert code == "ValidationException"
        assert (
            "Map keys must satisfy constraint: [Member must have length less than or equal to 255" in message
        )
    assert ddb.scan(TableName=table)["Count"] == 0


def _update(ddb, table: str, **kwargs) -> None:
    ddb.update_item(TableName=table, Key={"pk": {"S": "k"}}, **kwargs)


def test_an_expression_over_4096_bytes_is_refused_and_4096_bytes_pass(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}})
    at_limit = "attribute_exists(pk) AND " + "a" * (4096 - 31) + " <> :v"
    assert len(at_limit) == 4096
    _update(
        ddb,
        table,
        UpdateExpression="SET x = :v",
        ConditionExpression=at_limit,
        ExpressionAttributeValues={":v": {"S": "y"}},
    )
    code, message = _refusal(
        ddb.update_item,
        TableName=table,
        Key={"pk": {"S": "k"}},
        UpdateExpression="SET x = :w",
        ConditionExpression=at_limit + " ",
        ExpressionAttributeValues={":v": {"S": "y"}, ":w": {"S": "z"}},
    )
    assert (code, message) == (
        "ValidationException",
        "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4097",
    )
    code, message = _refusal(ddb.scan, TableName=table, ProjectionExpression=",".join(["pk"] * 1366))
    assert code == "ValidationException" and message.startswith(
        "Invalid ProjectionExpression: Expression size"
    )
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "k"}})["Item"]["x"] == {"S": "y"}


def test_an_expression_with_more_than_300_operators_is_refused_and_300_pass(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": "0"}})
    values = {":v": {"N": "1"}, ":z": {"N": "5"}}
    # 150 comparisons (one of them on size()) joined by 149 ANDs: 300 operators
    condition = " AND ".join(["n <> :v"] * 149 + ["size(pk) <> :z"])
    _update(
        ddb,
        table,
        UpdateExpression="SET n = n + :v",
        ConditionExpression=condition,
        ExpressionAttributeValues=values,
    )
    code, message = _refusal(
        ddb.update_item,
        TableName=table,
        Key={"pk": {"S": "k"}},
        UpdateExpression="SET n = n + :v",
        ConditionExpression=condition + " AND n <> :v",
        ExpressionAttributeValues=values,
    )
    assert (code, message) == (
        "ValidationException",
        "Invalid ConditionExpression: The expression contains too many operators; operator count: 302",
    )
    adds = "SET n = n" + " + :v" * 301
    code, message = _refusal(
        ddb.update_item,
        TableName=table,
        Key={"pk": {"S": "k"}},
        UpdateExpression=adds,
        ExpressionAttributeValues={":v": {"N": "1"}},
    )
    assert (code, message) == (
        "ValidationException",
        "Invalid UpdateExpression: The expression contains too many operators; operator count: 301",
    )
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "k"}})["Item"]["n"] == {"N": "1"}


def test_a_starting_key_that_does_not_fit_the_schema_is_refused(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, gsi=("g", "S"), pitr=False)
    for start in (
        {},
        {"pk": {"S": "a"}},
        {"pk": {"S": "a"}, "sk": {"N": "1"}},
        {"pk": {"S": "a"}, "zz": {"S": "1"}},
        {"pk": {"S": "a"}, "sk": {"S": "1"}, "zz": {"S": "1"}},
    ):
        code, message = _refusal(ddb.scan, TableName=table, ExclusiveStartKey=start)
        assert (code, message) == (
            "ValidationException",
            "The provided starting key is invalid: The provided key element does not match the schema",
        ), start
    code, message = _refusal(
        ddb.scan, TableName=table, IndexName="by-g", ExclusiveStartKey={"pk": {"S": "a"}, "sk": {"S": "1"}}
    )
    assert (code, message) == ("ValidationException", "The provided starting key is invalid")
    code, message = _refusal(
        ddb.query,
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "a"}},
        ExclusiveStartKey={"pk": {"S": "other"}, "sk": {"S": "1"}},
    )
    assert (code, message) == (
        "ValidationException",
        "The provided starting key is outside query boundaries based on provided conditions",
    )


def test_pages_still_follow_their_last_evaluated_key_on_tables_and_indexes(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, gsi=("g", "S"), pitr=False)
    for i in range(3):
        ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": str(i)}, "g": {"S": "x"}})

    def walk(call, **kwargs) -> int:
        seen, start = 0, {}
        while True:
            page = call(TableName=table, Limit=1, **kwargs, **start)
            seen += page["Count"]
            if "LastEvaluatedKey" not in page:
                return seen
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    assert walk(ddb.scan) == 3
    assert walk(ddb.scan, IndexName="by-g") == 3
    values = {":p": {"S": "a"}}
    assert walk(ddb.query, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values) == 3
    assert (
        walk(
            ddb.query,
            IndexName="by-g",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "x"}},
        )
        == 3
    )


def test_a_malformed_expression_on_a_missing_table_is_a_validation_error(aws, unique_name):
    """DynamoDB parses the expressions before it looks the table up: ValidationException, not ResourceNotFound."""
    ddb = aws.dynamodb
    key = {"pk": {"S": "a"}}
    code, _ = _refusal(ddb.get_item, TableName=unique_name, Key=key, ProjectionExpression="a,b,a,#a")
    assert code == "ValidationException"
    code, _ = _refusal(ddb.update_item, TableName=unique_name, Key=key, UpdateExpression="SET a = ")
    assert code == "ValidationException"
    code, _ = _refusal(ddb.get_item, TableName=unique_name, Key=key, ProjectionExpression="a, b")
    assert code == "ResourceNotFoundException"  # a well-formed request: the table is what is wrong


@pytest.mark.parametrize(
    ("projection", "start"),
    [
        ("whatever(stuff)", "Invalid ProjectionExpression: Syntax error; "),
        (":a", "Invalid ProjectionExpression: Syntax error; "),
        ("(a)", "Invalid ProjectionExpression: Syntax error; "),
        ("a..b", "Invalid ProjectionExpression: Syntax error; "),
        ("a[b]", "Invalid ProjectionExpression: Syntax error; "),
        ("a-b", "Invalid ProjectionExpression: Syntax error; "),
        (
            "a.abORt",
            "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: abORt",
        ),
    ],
)
def test_a_projection_outside_dynamodbs_grammar_is_refused(aws, unique_name, projection, start):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "a": {"M": {"b": {"S": "x"}}}})
    code, message = _refusal(
        ddb.get_item, TableName=table, Key={"pk": {"S": "k"}}, ProjectionExpression=projection
    )
    assert code == "ValidationException" and message.startswith(start), message
    item = ddb.get_item(
        TableName=table,
        Key={"pk": {"S": "k"}},
        ProjectionExpression=" a.b , #p",
        ExpressionAttributeNames={"#p": "pk"},
    )["Item"]
    assert item == {"pk": {"S": "k"}, "a": {"M": {"b": {"S": "x"}}}}


def test_legacy_key_conditions_no_key_can_be_read_by_are_a_validation_error(aws, unique_name):
    """moto answered HTTP 500 (KeyError) for a KeyConditions NULL on the partition key."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    code, message = _refusal(ddb.query, TableName=table, KeyConditions={"pk": {"ComparisonOperator": "NULL"}})
    assert (code, message) == (
        "ValidationException",
        "Attempted conditional constraint is not an indexable operation",
    )


def test_key_attributes_are_scalars_and_a_query_filter_may_not_name_the_key_it_reads(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "m": {"M": {"x": {"S": "y"}}}})
    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    code, message = _refusal(ddb.get_item, TableName=table, Key=key, ProjectionExpression="pk.x")
    assert (code, message) == (
        "ValidationException",
        "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: pk",
    )
    code, _ = _refusal(ddb.scan, TableName=table, FilterExpression="attribute_exists(sk[0])")
    assert code == "ValidationException"
    code, message = _refusal(
        ddb.query,
        TableName=table,
        KeyConditionExpression="pk = :p",
        FilterExpression="sk = :s",
        ExpressionAttributeValues={":p": {"S": "a"}, ":s": {"S": "1"}},
    )
    assert (code, message) == (
        "ValidationException",
        "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk",
    )
    # nested paths into other attributes, and key attributes in a Scan filter, stay fine
    assert ddb.get_item(TableName=table, Key=key, ProjectionExpression="m.x")["Item"] == {
        "m": {"M": {"x": {"S": "y"}}}
    }
    assert (
        ddb.scan(
            TableName=table,
            FilterExpression="sk = :s AND m.x = :y",
            ExpressionAttributeValues={":s": {"S": "1"}, ":y": {"S": "y"}},
        )["Count"]
        == 1
    )


@pytest.mark.parametrize(
    ("expression", "values", "message"),
    [
        ("pk = :a OR pk = :b", None, "Invalid operator used in KeyConditionExpression: OR"),
        ("pk <> :a", None, "Invalid operator used in KeyConditionExpression: <>"),
        ("pk IN (:a, :b)", None, "Invalid operator used in KeyConditionExpression: IN"),
        ("attribute_exists(pk)", {}, "Invalid operator used in KeyConditionExpression: attribute_exists"),
        ("pk = :a AND pk = :b", None, "KeyConditionExpressions must only contain one condition per key"),
        (
            "pk.x = :a",
            {":a": {"S": "k"}},
            "KeyConditionExpressions cannot have conditions on nested attributes",
        ),
        ("size(pk) = :n", {":n": {"N": "1"}}, "KeyConditionExpressions cannot contain nested operations"),
        (":a = :b", None, "Invalid condition in KeyConditionExpression: No key attribute specified"),
        (
            "pk = sk",
            {},
            "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
        ),
        (
            "pk = :a AND begins_with(:b, sk)",
            None,
            (
                "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its "
                "first operand"
            ),
        ),
        (
            "pk = :a AND sk BETWEEN :b AND :a",
            None,
            (
                "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal "
                "to lower bound; lower bound operand: AttributeValue: {S:k2}, upper bound operand: AttributeValue: "
                "{S:k1}"
            ),
        ),
        (
            "pk = :a AND sk BETWEEN :a AND :n",
            {":a": {"S": "k1"}, ":n": {"N": "1"}},
            (
                "Invalid KeyConditionExpression: The BETWEEN operator requires same data type for lower and upper "
                "bounds; lower bound operand: AttributeValue: {S:k1}, upper bound operand: AttributeValue: {N:1}"
            ),
        ),
    ],
)
def test_a_key_condition_outside_dynamodbs_grammar_is_refused_even_on_a_missing_table(
    aws, unique_name, expression, values, message
):
    """moto evaluated these (or answered ResourceNotFound on a missing table); DynamoDB refuses them unread."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k1"}, "sk": {"S": "1"}})
    values = {":a": {"S": "k1"}, ":b": {"S": "k2"}} if values is None else values
    for name in (table, unique_name + "-missing"):
        request = {"TableName": name, "KeyConditionExpression": expression}
        if values:
            request["ExpressionAttributeValues"] = values
        code, got = _refusal(ddb.query, **request)
        assert (code, got) == ("ValidationException", message), name


def test_valid_key_conditions_in_every_form_still_answer(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    for sk in ("a1", "a2", "b1"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "sk": {"S": sk}})
    values = {":p": {"S": "k"}, ":lo": {"S": "a1"}, ":hi": {"S": "a2"}, ":x": {"S": "a"}}
    counts = {}
    for expression in (
        "pk = :p",
        "#p = :p AND #s BETWEEN :lo AND :hi",
        "pk = :p and begins_with(sk, :x)",
        "(pk = :p) AND (sk > :lo)",
        "pk = :p AND sk >= :hi",
    ):
        used = {k: v for k, v in values.items() if k in expression}
        names = {k: v for k, v in {"#p": "pk", "#s": "sk"}.items() if k in expression}
        extra = {"ExpressionAttributeNames": names} if names else {}
        counts[expression] = ddb.query(
            TableName=table, KeyConditionExpression=expression, ExpressionAttributeValues=used, **extra
        )["Count"]
    assert list(counts.values()) == [3, 2, 2, 2, 2]


@pytest.mark.parametrize(
    ("call", "extra", "message"),
    [
        (
            "delete_item",
            {"ConditionExpression": "n BETWEEN :hi AND :lo"},
            (
                "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to "
                "lower bound; lower bound operand: AttributeValue: {N:10}, upper bound operand: AttributeValue: {N:9}"
            ),
        ),
        (
            "delete_item",
            {"ConditionExpression": "n BETWEEN :lo AND :s"},
            (
                "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; "
                "lower bound operand: AttributeValue: {N:9}, upper bound operand: AttributeValue: {S:x}"
            ),
        ),
        (
            "scan",
            {"FilterExpression": "attribute_type(n, :s)"},
            (
                "Invalid FilterExpression: Invalid attribute type name found; type: x, valid types: "
                "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
            ),
        ),
        (
            "scan",
            {"FilterExpression": "begins_with(n, :lo)"},
            (
                "Invalid FilterExpression: Incorrect operand type for operator or function; operator or function: "
                "begins_with, operand type: N"
            ),
        ),
        (
            "scan",
            {"FilterExpression": "n.m = n.m"},
            (
                "Invalid FilterExpression: The first operand must be distinct from the remaining operands for this "
                "operator or function; operator: =, first operand: [n, m]"
            ),
        ),
    ],
)
def test_conditions_dynamodb_refuses_after_reading_them_are_refused(aws, unique_name, call, extra, message):
    """moto evaluated these conditions (BETWEEN 10 AND 9 is simply false); DynamoDB refuses them, writes nothing."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": "9"}})
    values = {":lo": {"N": "9"}, ":hi": {"N": "10"}, ":s": {"S": "x"}}
    text = next(iter(extra.values()))
    request = {"TableName": table, **extra}
    if any(k in text for k in values):
        request["ExpressionAttributeValues"] = {k: v for k, v in values.items() if k in text}
    if call == "delete_item":
        request["Key"] = {"pk": {"S": "k"}}
    code, got = _refusal(getattr(ddb, call), **request)
    assert (code, got) == ("ValidationException", message)
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "k"}})
    ddb.delete_item(
        TableName=table,
        Key={"pk": {"S": "k"}},
        ConditionExpression="n BETWEEN :lo AND :hi AND attribute_type(n, :t) AND size(pk) = :one",
        ExpressionAttributeValues={
            ":lo": {"N": "9"},
            ":hi": {"N": "10"},
            ":t": {"S": "N"},
            ":one": {"N": "1"},
        },
    )
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "k"}})


def test_legacy_between_bounds_in_the_wrong_order_are_refused(aws, unique_name):
    """moto evaluated BETWEEN "b" AND "a" as false (a conditional-check failure); DynamoDB refuses the request."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    key = {"pk": {"S": "k"}, "sk": {"S": "b"}}
    ddb.put_item(TableName=table, Item=key)
    backwards = {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"S": "b"}, {"S": "a"}]}
    message = (
        "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
    )
    for name in (table, unique_name + "-missing"):
        code, got = _refusal(ddb.delete_item, TableName=name, Key=key, Expected={"sk": backwards})
        assert (code, got) == ("ValidationException", message)
    code, got = _refusal(
        ddb.query,
        TableName=table,
        KeyConditions={
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "k"}]},
            "sk": backwards,
        },
    )
    assert (code, got) == ("ValidationException", message)
    forwards = {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "9"}, {"N": "10"}]}
    assert ddb.scan(TableName=table, ScanFilter={"n": forwards})["Count"] == 0
    assert "Item" in ddb.get_item(TableName=table, Key=key)


@pytest.mark.parametrize(
    ("projection", "names", "message"),
    [
        (
            "b[1], b.a, #a.b, a",
            {"#a": "a"},
            (
                "Two document paths overlap with each other; must remove or rewrite one of these paths; "
                "path one: [a, b], path two: [a]"
            ),
        ),
        (
            "pk, m.x, pk",
            None,
            (
                "Two document paths overlap with each other; must remove or rewrite one of these paths; "
                "path one: [pk], path two: [pk]"
            ),
        ),
        (
            "m.x, #m[1]",
            {"#m": "m"},
            (
                "Two document paths conflict with each other; must remove or rewrite one of these paths; "
                "path one: [m, x], path two: [m, [1]]"
            ),
        ),
    ],
)
def test_overlapping_or_conflicting_projection_paths_are_refused(
    aws, unique_name, projection, names, message
):
    """moto answered these (ResourceNotFound on a missing table); DynamoDB refuses them before the lookup."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "m": {"M": {"x": {"S": "y"}}}})
    extra = {"ExpressionAttributeNames": names} if names else {}
    for name in (table, unique_name + "-missing"):
        code, got = _refusal(
            ddb.get_item, TableName=name, Key={"pk": {"S": "k"}}, ProjectionExpression=projection, **extra
        )
        assert (code, got) == ("ValidationException", f"Invalid ProjectionExpression: {message}")
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "k"}}, ProjectionExpression="m.x, m.z, pk")["Item"]
    assert item == {"pk": {"S": "k"}, "m": {"M": {"x": {"S": "y"}}}}


def test_a_query_or_scan_of_an_index_the_table_does_not_have_is_a_validation_error(aws, unique_name):
    """moto answered ResourceNotFoundException (as if the table were missing); DynamoDB: ValidationException."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, gsi=("g", "S"), pitr=False)
    message = "The table does not have the specified index: whatever"
    code, got = _refusal(
        ddb.query,
        TableName=table,
        IndexName="whatever",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "x"}},
    )
    assert (code, got) == ("ValidationException", message)
    code, got = _refusal(ddb.scan, TableName=table, IndexName="whatever")
    assert (code, got) == ("ValidationException", message)
    assert ddb.scan(TableName=table, IndexName="by-g")["Count"] == 0
    code, _ = _refusal(ddb.scan, TableName=unique_name + "-missing", IndexName="whatever")
    assert code == "ResourceNotFoundException"


def _eq(op: str = "EQ", *values: str) -> dict:
    return {"ComparisonOperator": op, "AttributeValueList": [{"S": v} for v in values or ("a",)]}


@pytest.mark.parametrize(
    ("conditions", "index"),
    [
        ({"KeyConditionExpression": "pk > :a"}, None),
        ({"KeyConditionExpression": "y = :a AND z = :a"}, None),
        ({"KeyConditionExpression": "pk = :a AND zz = :a"}, None),
        ({"KeyConditionExpression": "g BETWEEN :a AND :a"}, "by-g"),
        ({"KeyConditions": {"pk": _eq("GT")}}, None),
        ({"KeyConditions": {"pk": _eq(), "zz": _eq()}}, None),
        ({"KeyConditions": {"g": _eq("BETWEEN", "a", "b")}}, "by-g"),
        ({"KeyConditions": {"g": _eq(), "z": _eq()}}, "by-g"),
    ],
)
def test_a_key_condition_the_key_schema_cannot_serve_is_refused(aws, unique_name, conditions, index):
    """moto answered some of these, or another message (a range condition on a partition key, a condition
    no key of the table or GSI holds)."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, gsi=("g", "S"), pitr=False)
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "g": {"S": "a"}})
    extra = {"IndexName": index} if index else {}
    if "KeyConditionExpression" in conditions:
        extra["ExpressionAttributeValues"] = {":a": {"S": "a"}}
    code, got = _refusal(ddb.query, TableName=table, **conditions, **extra)
    assert (code, got) == ("ValidationException", "Query key condition not supported")


def test_a_starting_key_outside_the_sort_key_condition_is_refused_and_pages_still_follow(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    for sk in ("1", "2", "3", "4"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": sk}})
    query = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p AND sk > :lo",
        "ExpressionAttributeValues": {":p": {"S": "a"}, ":lo": {"S": "2"}},
    }
    code, got = _refusal(ddb.query, **query, ExclusiveStartKey={"pk": {"S": "a"}, "sk": {"S": "1"}})
    assert (code, got) == (
        "ValidationException",
        "The provided starting key does not match the range key predicate",
    )
    seen, start = [], {}
    while True:
        page = ddb.query(**query, Limit=1, **start)
        seen += [item["sk"]["S"] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    assert seen == ["3", "4"]


def test_an_update_giving_an_index_key_the_wrong_type_is_refused_and_writes_nothing(aws, unique_name):
    """moto stored the item (an N where the GSI's key is S); DynamoDB refuses the update whole."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, gsi=("g", "S"), pitr=False)
    message = (
        "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N "
        "IndexName: by-g"
    )
    old = {"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": "x"}, "n": {"N": "1"}}
    ddb.put_item(TableName=table, Item=old)
    for key in ({"pk": {"S": "a"}, "sk": {"S": "1"}}, {"pk": {"S": "new"}, "sk": {"S": "1"}}):
        for update in (
            {"UpdateExpression": "SET n = :one, g = :one", "ExpressionAttributeValues": {":one": {"N": "1"}}},
            {"AttributeUpdates": {"g": {"Value": {"N": "2"}}}},
        ):
            code, got = _refusal(ddb.update_item, TableName=table, Key=key, **update)
            if key["pk"]["S"] == "new" and "AttributeUpdates" in update:  # moto stored this one; it refused
                # the others, in words of its own
                assert (code, got) == ("ValidationException", message)
            assert code == "ValidationException" and "Type mismatch" in got
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "1"}})["Item"] == old
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "new"}, "sk": {"S": "1"}})
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "a"}, "sk": {"S": "1"}},
        UpdateExpression="SET g = :s",
        ExpressionAttributeValues={":s": {"S": "y"}},
    )
    assert (
        ddb.query(
            TableName=table,
            IndexName="by-g",
            KeyConditionExpression="g = :s",
            ExpressionAttributeValues={":s": {"S": "y"}},
        )["Count"]
        == 1
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("set a = b + c + d", 'Syntax error; token: "+", near: "c + d"'),
        ("SET a = :v - b - c", 'Syntax error; token: "-", near: "b - c"'),
        ("set a=set", 'Syntax error; token: "set", near: "= set"'),
    ],
)
def test_update_syntax_errors_moto_read_are_refused_even_on_a_missing_table(
    aws, unique_name, expression, message
):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    key = {"pk": {"S": "k"}}
    ddb.put_item(TableName=table, Item={**key, "b": {"N": "1"}, "c": {"N": "1"}, "d": {"N": "1"}})
    extra = {"ExpressionAttributeValues": {":v": {"N": "5"}}} if ":v" in expression else {}
    for name in (table, unique_name + "-missing"):
        code, got = _refusal(ddb.update_item, TableName=name, Key=key, UpdateExpression=expression, **extra)
        assert (code, got) == ("ValidationException", f"Invalid UpdateExpression: {message}")
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET a = if_not_exists(a, :v) + b, e = list_append(if_not_exists(e, :l), :l) "
        "REMOVE d ADD n :v",
        ExpressionAttributeValues={":v": {"N": "5"}, ":l": {"L": [{"S": "x"}]}},
    )
    item = ddb.get_item(TableName=table, Key=key)["Item"]
    assert item["a"] == {"N": "6"} and item["n"] == {"N": "5"} and "d" not in item


def test_one_condition_sent_again_with_other_values_is_judged_on_those_values(aws, unique_name):
    """Verdicts are remembered per expression and value types; BETWEEN bounds are read each time."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    condition = "attribute_not_exists(pk) OR n BETWEEN :lo AND :hi"
    for i in range(3):
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": str(i)}, "n": {"N": "5"}},
            ConditionExpression=condition,
            ExpressionAttributeValues={":lo": {"N": "1"}, ":hi": {"N": str(9 + i)}},
        )
    code, _ = _refusal(
        ddb.put_item,
        TableName=table,
        Item={"pk": {"S": "0"}, "n": {"N": "6"}},
        ConditionExpression=condition,
        ExpressionAttributeValues={":lo": {"N": "10"}, ":hi": {"N": "9"}},
    )
    assert code == "ValidationException"
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "0"}})["Item"]["n"] == {"N": "5"}


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("S", [{"S": f"k{i}"} for i in range(12)]),
        ("N", [{"N": str(i * 7)} for i in range(12)]),
        ("B", [{"B": bytes([i, 255 - i])} for i in range(12)]),
    ],
)
def test_a_segmented_scan_refuses_a_start_key_of_another_segment_and_pages_through_its_own(
    aws, unique_name, kind, values
):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("pk", kind), range_key=None, pitr=False)
    for value in values:
        ddb.put_item(TableName=table, Item={"pk": value})
    seen = []
    for segment in range(3):  # every segment paged one item at a time: each item once, no refusal
        start: dict = {}
        while True:
            page = ddb.scan(TableName=table, Segment=segment, TotalSegments=3, Limit=1, **start)
            seen += [item["pk"] for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    assert sorted(map(str, seen)) == sorted(map(str, values))
    first = ddb.scan(TableName=table, Segment=1, TotalSegments=2)["Items"][0]
    code, message = _refusal(
        ddb.scan, TableName=table, Segment=0, TotalSegments=2, ExclusiveStartKey={"pk": first["pk"]}
    )
    assert code == "ValidationException"
    assert message == (
        "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with "
        "correct Segment. TotalSegments: 2 Segment: 0"
    )
