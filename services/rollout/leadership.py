"""One rollout controller acting at a time on Kubernetes: a coordination.k8s.io Lease.

The process waits for the Lease before it joins the consumer group, renews it on a thread,
and exits when it could not renew for most of the Lease's duration (Kubernetes restarts it and
it waits again), as client-go's leader election does: two controllers never decide at once.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from services.core.errors import ConfigError
from services.core.runtime import replica_id
from services.core.settings import load
from services.rollout.settings import RolloutSettings

if TYPE_CHECKING:
    from services.rollout.kube import LeaseLeader

log = logging.getLogger(__name__)


def lead_or_wait() -> None:
    """Return once this process leads (at once when not on Kubernetes)."""
    try:
        settings = load(RolloutSettings)
    except ConfigError:
        return  # the service's start reports it, with every other setting's problem
    if not settings.kube_namespace:
        return
    from services.rollout.kube import LeaseLeader, in_cluster_api

    identity = replica_id()
    leader = LeaseLeader(
        in_cluster_api(),
        settings.kube_namespace,
        settings.lease_name,
        identity,
        settings.lease_duration_s,
    )
    every_s = settings.lease_duration_s / 3
    while not leader.lead():
        log.info("waiting for lease %s (another controller acts)", settings.lease_name)
        time.sleep(every_s)
    log.info("leading as %s (lease %s)", identity, settings.lease_name)
    atexit.register(leader.release)  # a drained exit hands over at once, not after the duration
    threading.Thread(
        target=_renew, args=(leader, every_s, settings.lease_duration_s), daemon=True
    ).start()


def _renew(leader: LeaseLeader, every_s: float, duration_s: float) -> None:
    renewed_at = time.monotonic()
    while True:
        time.sleep(every_s)
        if leader.lead():
            renewed_at = time.monotonic()
        elif time.monotonic() - renewed_at > 2 * duration_s / 3:
            log.error("lost the lease: exiting so that one controller acts at a time")
            os._exit(1)
