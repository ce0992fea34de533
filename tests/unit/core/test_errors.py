"""Library errors that stand for a clear answer are mapped to one, never to INTERNAL."""

from __future__ import annotations

import grpc
from sqlalchemy.exc import DataError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.core.errors import InvalidArgument, ResourceExhausted, status_for, translate_foreign


def test_a_saturated_connection_pool_is_resource_exhausted_for_the_caller_to_retry() -> None:
    error = translate_foreign(PoolTimeout("QueuePool limit of size 5 overflow 10 reached"))
    assert isinstance(error, ResourceExhausted)
    assert status_for(error) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "saturated" in str(error) and "retry" in str(error)


def test_a_value_the_database_cannot_store_is_invalid_argument() -> None:
    error = translate_foreign(DataError("INSERT …", {}, Exception("value too long")))
    assert isinstance(error, InvalidArgument)


def test_other_errors_are_not_translated() -> None:
    assert translate_foreign(RuntimeError("boom")) is None
