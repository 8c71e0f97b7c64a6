"""Turn the (project, bucket) rows of ``report_repo.series`` into chart series: one list of
buckets, gaps filled with zeros, and per project the cost, tokens and requests of each."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from addon.pricing.cost import usd_text

FORMATS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H"}
STEPS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
MAX_BUCKETS = 2000  # beyond this the gaps are not filled (the chart stays readable anyway)


def buckets(seen: list[str], bucket: str) -> list[str]:
    """Every bucket from the first seen to the last, in order."""
    if not seen:
        return []
    fmt, step = FORMATS[bucket], STEPS[bucket]
    first, last = datetime.strptime(min(seen), fmt), datetime.strptime(max(seen), fmt)
    if (last - first) / step >= MAX_BUCKETS:
        return sorted(set(seen))
    out, at = [], first
    while at <= last:
        out.append(at.strftime(fmt))
        at += step
    return out


def project_series(rows: list[dict[str, Any]], bucket: str) -> dict[str, Any]:
    labels = buckets([r["bucket"] for r in rows], bucket)
    index = {b: i for i, b in enumerate(labels)}
    per: dict[str | None, dict[str, list[int]]] = {}
    for r in rows:
        cells = per.setdefault(
            r["project"], {f: [0] * len(labels) for f in ("cost", "tokens", "requests")}
        )
        i = index[r["bucket"]]
        cells["cost"][i] += int(r["cost_picousd"])
        cells["tokens"][i] += int(r["input_tokens"]) + int(r["output_tokens"])
        cells["requests"][i] += int(r["requests"])
    return {
        "bucket": bucket,
        "labels": labels,
        "projects": [
            {
                "project": project,
                "cost_usd": [usd_text(c) for c in cells["cost"]],
                "tokens": cells["tokens"],
                "requests": cells["requests"],
            }
            for project, cells in sorted(per.items(), key=lambda kv: kv[0] or "")
        ],
    }
