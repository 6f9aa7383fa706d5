"""Rate limits and token quotas: admit a request in one call, settle it in one call.

`create_limiter` (factory.py) picks the backend: in-process (memory.py) by default, Redis
(redis.py) when a Redis URL is set, which makes limits exact across workers and machines.
"""

from gateway.limits.base import Admission, Clock, Limiter, LimiterUnavailable
from gateway.payloads import FailMode, LimiterStatus

__all__ = ["Admission", "Clock", "FailMode", "Limiter", "LimiterStatus", "LimiterUnavailable"]
