"""One replica in its own OS process: a Governor on the state URL it is given (tests/replicas.py starts it).

    python tests/replica_worker.py budget --policy P --state URL --task T --threads 8 --attempts 10 --go FILE
        prints {"ready": true} once its Governor is built, waits for FILE to exist, makes threads × attempts
        calls and prints {"ran": N}: how many calls the Governor let run.

    python tests/replica_worker.py watch --policy P --state URL --agent A --stop FILE
        calls a tool again and again until FILE exists, printing one line per call:
        {"start": wall-clock time the call began, "ok": ran or not, "rules": rule ids of a denial}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time


def _say(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def _governor(policy: str, state_url: str):
    from agt.runtime import Governor
    from agt.runtime.backends import open_state

    state = open_state(state_url)
    return Governor("yaml", policy, store=state.store, approvals=state.approvals, trust=state.trust), state


def budget(args: argparse.Namespace) -> None:
    from agt.errors import GovernanceDenied

    gov, state = _governor(args.policy, args.state)
    ran, lock = [0], threading.Lock()
    _say({"ready": True})
    while not os.path.exists(args.go):
        time.sleep(0.01)

    def work() -> None:
        for _ in range(args.attempts):
            try:
                gov.call(lambda: None, tool="read_doc", agent="worker", task=args.task)
            except GovernanceDenied:
                continue
            with lock:
                ran[0] += 1

    threads = [threading.Thread(target=work) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _say({"ran": ran[0]})
    state.close()


def watch(args: argparse.Namespace) -> None:
    from agt.errors import GovernanceDenied

    gov, state = _governor(args.policy, args.state)
    while not os.path.exists(args.stop):
        start = time.time()
        try:
            gov.call(lambda: None, tool="read_doc", agent=args.agent, task=f"watch-{start}")
            _say({"start": start, "ok": True, "rules": []})
        except GovernanceDenied as denied:
            _say({"start": start, "ok": False, "rules": list(denied.decision.rule_ids)})
        time.sleep(0.005)
    state.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("budget")
    w = sub.add_parser("watch")
    for p in (b, w):
        p.add_argument("--policy", required=True)
        p.add_argument("--state", required=True)
    b.add_argument("--task", required=True)
    b.add_argument("--threads", type=int, default=8)
    b.add_argument("--attempts", type=int, default=10)
    b.add_argument("--go", required=True)
    w.add_argument("--agent", required=True)
    w.add_argument("--stop", required=True)
    args = parser.parse_args()
    {"budget": budget, "watch": watch}[args.mode](args)


if __name__ == "__main__":
    main()
