"""Cost and time estimates before the expensive steps, from a real (sandbox) table's figures."""

from __future__ import annotations

import pytest

from recovery_helpers import estimate
from tests.conftest import create_table


@pytest.fixture
def table(aws, unique_name):
    ddb = aws.dynamodb
    name = create_table(ddb, unique_name)
    for i in range(30):  # ~1.5 KB each: 2 write units per item, 1 read unit
        ddb.put_item(
            TableName=name,
            Item={
                "pk": {"S": f"p{i:02d}"},
                "sk": {"S": "x"},
                "blob": {"S": "z" * 1500},
                "n": {"N": "12345"},
                "m": {"M": {"a": {"BOOL": True}}},
            },
        )
    return name


def test_figures_come_from_a_sample_when_describe_table_has_no_size(aws, table):
    figures = estimate.table_figures(aws.dynamodb, table)
    assert figures.items == 30 and figures.source == "sample of 30 items"
    one = {
        "pk": {"S": "p00"},
        "sk": {"S": "x"},
        "blob": {"S": "z" * 1500},
        "n": {"N": "12345"},
        "m": {"M": {"a": {"BOOL": True}}},
    }
    assert estimate.item_size(one) == 2 + 3 + 2 + 1 + 4 + 1500 + 1 + 4 + 1 + 3 + 1 + 1 + 1
    assert figures.bytes == 30 * estimate.item_size(one)


def test_patch_estimate_names_its_cap_and_counts_transactions_twice(aws, table):
    figures = estimate.table_figures(aws.dynamodb, table)
    capped = estimate.estimate_patch(600, figures.average_item_bytes, max_write_rate=10)
    assert capped.write_units == 600 * 2 * 2 and capped.read_units == 600
    assert capped.minutes == pytest.approx(1.0) and capped.capped_by == "max_write_rate"
    single = estimate.estimate_patch(600, figures.average_item_bytes, transactional=False)
    assert single.write_units == 1200 and single.minutes < capped.minutes


def test_full_export_costs_no_read_units_full_compare_does(aws, table):
    figures = estimate.table_figures(aws.dynamodb, table)
    export = estimate.estimate_full_export_diff(figures)
    compare = estimate.estimate_full_compare(figures)
    assert export.read_units == 0 and export.export_gb == pytest.approx(2 * figures.bytes / 1e9)
    assert compare.read_units == 30 * 2 and compare.export_gb == 0
    slow = estimate.estimate_full_compare(figures, read_capacity=1)
    assert slow.minutes > compare.minutes
    assert "full_export diff: items=30" in export.line()
