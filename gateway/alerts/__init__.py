"""Budget and quota alerts (alerts.yaml): which thresholds are reached (reached.py), the
ledger that makes each fire once (fired.py), webhook deliveries (webhook.py), and the
settlement hook that ties them together (watch.py)."""

from gateway.alerts.watch import BudgetAlerts

__all__ = ["BudgetAlerts"]
