"""The API reference's multi-stage ETL pipeline."""

from __future__ import annotations

from typing import Any

from flowweaver import TaskStatus, ThreadedExecutor, Workflow, task


@task(retries=2, timeout=30)
def fetch_raw_data() -> dict[str, Any]:
    """Fetch data from multiple sources."""
    return {
        "users": [{"id": 1, "name": "Alice"}, {"id": 2, "name": "Bob"}],
        "orders": [{"user_id": 1, "amount": 100}],
    }


@task(retries=1)
def validate_data(fetch_raw_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate data integrity."""
    if not fetch_raw_data:
        raise ValueError("No data to validate")
    assert isinstance(fetch_raw_data["users"], list)
    assert isinstance(fetch_raw_data["orders"], list)
    return {"valid": True, "record_count": len(fetch_raw_data["users"])}


@task()
def transform_data(
    fetch_raw_data: dict[str, Any] | None = None, validate_data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Transform validated data."""
    assert fetch_raw_data is not None
    assert validate_data is not None
    if not validate_data["valid"]:
        raise ValueError("Data validation failed")
    return {
        "user_count": len(fetch_raw_data["users"]),
        "order_count": len(fetch_raw_data["orders"]),
        "user_names": [u["name"] for u in fetch_raw_data["users"]],
    }


@task()
def load_to_warehouse(transform_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load data to the warehouse."""
    assert transform_data is not None
    print(f"Loading {transform_data['user_count']} users to warehouse")
    return {"rows_loaded": transform_data["user_count"]}


workflow = Workflow(name="etl_pipeline", description="Extract, Transform, Load pipeline")
workflow.add_task(fetch_raw_data)
workflow.add_task(validate_data, depends_on=["fetch_raw_data"])
workflow.add_task(transform_data, depends_on=["fetch_raw_data", "validate_data"])
workflow.add_task(load_to_warehouse, depends_on=["transform_data"])

if __name__ == "__main__":
    ThreadedExecutor(max_workers=2).execute(workflow)
    for t in workflow.tasks:
        if t.status == TaskStatus.COMPLETED:
            print(f"✓ {t.name}: {t.result}")
        else:
            print(f"✗ {t.name}: {t.status.value} {t.error or ''}")
