from tests.conftest import create_table


def test_sandbox_serves_dynamodb_over_http(aws, unique_name):
    create_table(aws.dynamodb, unique_name)
    aws.dynamodb.put_item(TableName=unique_name, Item={"pk": {"S": "a"}, "sk": {"S": "1"}})
    assert aws.dynamodb.get_item(TableName=unique_name, Key={"pk": {"S": "a"}, "sk": {"S": "1"}})["Item"]
