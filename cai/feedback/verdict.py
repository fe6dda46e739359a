"""Can these labels be trusted? One verdict per audited judge, from its known-answer audit (cai/feedback/audit.py),
used by the run report, the console summary, the sweep report and the export cards alike.

Rules (README, "Can these labels be trusted?"):
- at chance: the 95% interval of known-answer accuracy reaches 0.5 (its lower bound is <= 0.5): on answers whose
  better side is not in doubt the judge cannot be told from a coin, so labels it made are noise;
- trustworthy: the interval's lower bound is >= TRUST_ACCURACY and the A/B order agreement >= TRUST_AGREEMENT
  (both orders of a pair pick the same answer); order agreement is only measured with debias=swap;
- weak: anything between (better than a coin, but the interval is wide or the order decides too often).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Set

TRUST_ACCURACY = 0.75
TRUST_AGREEMENT = 0.75
TRUSTWORTHY, WEAK, AT_CHANCE, NOT_AUDITED = "trustworthy", "weak", "at chance", "not audited"


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict, the numbers behind it and what to try next."""

    label: str
    numbers: str
    meaning: str
    next_step: str

    def line(self, node: str) -> str:
        """The one-line form the console prints."""
        return f"can the labels of {node} be trusted? {self.label.upper()} ({self.numbers})"


def judge_verdict(audit: Optional[Dict[str, Any]], node: str = "NODE") -> Verdict:
    """The verdict for one audit summary (metrics.json `audit`); `node` names the keys in the advice."""
    if not isinstance(audit, dict) or not audit.get("items"):
        return Verdict(NOT_AUDITED, "no known-answer audit", "nothing says whether the judge beats a coin",
                       f"run with pipeline.{node}.audit=true, or `python -m cai recipe=judge_audit`")
    low, agreement = float(audit["low"]), audit.get("order_agreement")
    numbers = (f"known-answer accuracy {audit['accuracy']:.0%}, 95% CI {low:.0%}-{audit['high']:.0%}, "
               f"n={audit['items']}; order agreement "
               + (f"{agreement:.2f}" if agreement is not None else "not measured (debias=none)")
               + (f"; position bias {audit['position_bias']:+.2f}" if audit.get("position_bias") is not None else ""))
    if low <= 0.5:
        return Verdict(AT_CHANCE, numbers, "the judge does no better than a coin on comparisons whose answer is not "
                       "in doubt: its labels are noise, and models trained or ranked on them show nothing",
                       _stronger(node))
    if low >= TRUST_ACCURACY and agreement is not None and agreement >= TRUST_AGREEMENT:
        return Verdict(TRUSTWORTHY, numbers, "the judge agrees with the known answers in either A/B order",
                       f"more audit items (pipeline.{node}.audit_limit=null) narrow the interval further")
    return Verdict(WEAK, numbers, "the judge beats a coin, but not by a margin its labels can be leaned on",
                   _stronger(node))


def _stronger(node: str) -> str:
    return (f"a larger judge (model@models.judge=mistral_7b_instruct on a GPU, or any hub model via "
            f"models.judge.id=...), a served model (models.judge.engine=openai with models.judge.base_url=..., where "
            f"that engine is installed), chain of thought (pipeline.{node}.method=cot), or more ensemble members "
            f"(pipeline.{node}.ensemble=8); `python -m cai recipe=judge_audit` checks a judge on its own")


def verdicts(audits: Dict[str, Any]) -> Dict[str, Verdict]:
    """{node: verdict} for every node whose metrics hold an audit."""
    return {node: judge_verdict(audit, node) for node, audit in audits.items() if isinstance(audit, dict)}


def downstream(parents: Dict[str, Iterable[str]], sources: Set[str]) -> Dict[str, List[str]]:
    """{node: the `sources` among its ancestors} for every node with at least one (nodes in `parents` order)."""
    memo: Dict[str, Set[str]] = {}

    def above(name: str, trail: tuple = ()) -> Set[str]:
        if name not in memo:
            found: Set[str] = set()
            for parent in parents.get(name, ()):
                if parent in parents and parent not in trail:
                    found |= ({parent} & sources) | above(parent, trail + (name,))
            memo[name] = found
        return memo[name]

    return {n: sorted(above(n)) for n in parents if above(n)}
