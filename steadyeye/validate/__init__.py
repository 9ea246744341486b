"""`steadyeye model validate`: gate a candidate model on the serving model's own frames."""

from services.rollout.policy import Policy, PolicyError, load_policy, parse_policy
from steadyeye.validate.request import Request, UsageError
from steadyeye.validate.run import validate

__all__ = [
    "Policy",
    "PolicyError",
    "Request",
    "UsageError",
    "load_policy",
    "parse_policy",
    "validate",
]
