"""The advise report: figures derived from the records, JSON round trip, Markdown and HTML forms."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from advise_data import measured

from llmprov.core.advise.html import Series, line_chart, nice_ceiling, report_to_html
from llmprov.core.advise.recommend import Hardware
from llmprov.core.advise.report import (
    AdviseReport,
    EngineMeasurement,
    ReportFormatError,
    WorkloadInfo,
    host_report,
    report_from_json,
    report_to_json,
    report_to_markdown,
)
from llmprov.core.advise.slo import parse_slo

SLO = parse_slo("ttft_p99=2s,tpot_p99=100ms")
LLAMACPP = {1: (30.0, 200, 30), 2: (55.0, 400, 35), 4: (90.0, 900, 60), 8: (100.0, 2600, 95)}
VLLM = {1: (20.0, 500, 45), 2: (38.0, 600, 48), 4: (70.0, 800, 52), 8: (120.0, 1100, 70)}
LLAMACPP_RATES = {0.5: (20.0, 300, 30), 1.0: (40.0, 900, 40), 2.0: (60.0, 2500, 80)}
VLLM_RATES = {0.5: (18.0, 500, 45), 1.0: (36.0, 700, 48), 2.0: (70.0, 1200, 60)}
# What llmprov's Ollama test stand-in says of itself in its version answer.
NOTE = "llmprov test stand-in, not Ollama"
OLLAMA = {1: (25.0, 300, 40), 2: (45.0, 500, 45), 4: (80.0, 900, 60), 8: (140.0, 1000, 60)}


def sample_report(applied: list[str] | None = None) -> AdviseReport:
    host = host_report(
        "box-1",
        Hardware(),
        [
            measured("llamacpp", LLAMACPP, rates=LLAMACPP_RATES),
            measured("vllm", VLLM, cold_start_s=62.0, rates=VLLM_RATES),
            measured("ollama", OLLAMA, not_engine=NOTE),
            EngineMeasurement(engine="vllm-broken", error="deploy failed: no wheel"),
        ],
        SLO,
        users=6,
    )
    return AdviseReport(
        created="2026-12-01T20:00:00+00:00",
        model="smollm2",
        workload=WorkloadInfo(source="client.jsonl", requests=40, mean_output_tokens=32.0),
        slo=str(SLO),
        users=6,
        concurrencies=[1, 2, 4, 8],
        request_rates=[0.5, 1.0, 2.0],
        hosts=[host],
        applied=applied or [],
    )


def test_figures_follow_the_records() -> None:
    host = sample_report().hosts[0]
    llama, vllm, ollama, broken = host.engines
    assert llama.goodput is not None and vllm.goodput is not None
    # llama.cpp misses the TTFT objective at 8; vLLM meets both at every level.
    assert (llama.goodput.concurrency, llama.goodput.output_tokens_per_s) == (4, 90.0)
    assert llama.first_miss is not None and llama.first_miss.concurrency == 8
    assert llama.first_miss.reasons == ["ttft_p99 2600ms > 2s"]
    assert (vllm.goodput.concurrency, vllm.goodput.output_tokens_per_s) == (8, 120.0)
    assert vllm.first_miss is None
    # By request rate: llama.cpp's TTFT misses at 2/s, vLLM meets the SLO at every rate.
    assert (llama.goodput_rate, vllm.goodput_rate, ollama.goodput_rate) == (1.0, 2.0, None)
    assert llama.knee_metric == "ttft_p99"
    assert llama.knee_concurrency == 4
    assert ollama.label == f"ollama ({NOTE})"
    assert broken.error == "deploy failed: no wheel" and broken.goodput is None
    # Ollama's stand-in figures are the best but never ranked.
    assert host.recommendation.engine == "vllm"
    assert "ollama's server said it is not ollama: its figures are not ranked" in (
        host.recommendation.reasons
    )


def test_json_round_trips_and_refuses_other_versions() -> None:
    report = sample_report()
    text = report_to_json(report)
    assert json.loads(text)["schema_version"] == 1
    assert report_from_json(text, "r.json") == report
    with pytest.raises(ReportFormatError, match=r"r\.json: schema_version 2 is not supported"):
        report_from_json(text.replace('"schema_version": 1', '"schema_version": 2'), "r.json")
    with pytest.raises(ReportFormatError, match=r"r\.json: hosts.0.host"):
        report_from_json(text.replace('"host": "box-1"', '"host": 3'), "r.json")
    with pytest.raises(ReportFormatError, match=r"r\.json: not JSON"):
        report_from_json("{", "r.json")


def test_markdown_shows_the_recommendation_reasons_and_every_level() -> None:
    md = report_to_markdown(sample_report(["box-1: llmprov-llamacpp.service stopped and disabled"]))
    assert "**Recommendation: vllm**" in md
    assert (
        "- vllm meets the SLO up to concurrency 8 (120.0 output tokens/s there), 1.33× headroom over 6 users"
        in md
    )
    assert f"| ollama ({NOTE}) | 8 | 8 | 0 | 140.0 |" in md
    assert (
        "| llamacpp | 3.5 s | – | 512 MiB | – | 4 | 90.0 | 4 (ttft_p99) | 1 req/s "
        "| 8: ttft_p99 2600ms > 2s |"
    ) in md
    assert (
        "| vllm-broken | – | – | – | – | – | – | – (ttft_p99) | – | deploy failed: no wheel |" in md
    )
    assert "Request rates: 0.5, 1, 2 /s." in md
    # By request rate: E2E p99 is TTFT p99 + 32 × TPOT p99 in the sample data.
    assert "| vllm | 2 | 8 | 0 | 70.0 | 1200 | 60.0 | 3120 |" in md
    assert "## Applied" in md


def _svgs(page: str) -> list[ET.Element]:
    found = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    return [ET.fromstring(svg) for svg in found]


def test_html_is_self_contained_with_a_chart_per_metric_and_the_slo_drawn() -> None:
    page = report_to_html(sample_report())
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no external assets"
    assert "<link" not in page and "@import" not in page
    ns = "{http://www.w3.org/2000/svg}"
    charts = _svgs(page)
    # Throughput, TTFT p99 and TPOT p99 (the SLO's objectives), then TTFT p99 by request rate.
    titles = [chart.attrib["aria-label"] for chart in charts]
    assert titles == [
        "Output tokens/s", "TTFT p99 (ms)", "TPOT p99 (ms)", "TTFT p99 (ms) by request rate",
    ]  # fmt: skip
    rate_lines = charts[3].findall(f"{ns}polyline")
    assert [line.find(f"{ns}title").text for line in rate_lines] == ["llamacpp", "vllm"]  # type: ignore[union-attr]
    assert len(charts[3].findall(f"{ns}line[@class='slo']")) == 1
    for chart in charts[:3]:
        lines = chart.findall(f"{ns}polyline")
        # One line per engine with records (the broken one has none).
        assert [line.find(f"{ns}title").text for line in lines] == [  # type: ignore[union-attr]
            "llamacpp", "vllm", f"ollama ({NOTE})",
        ]  # fmt: skip
        assert all(len(line.attrib["points"].split()) == 4 for line in lines)
    assert [len(c.findall(f"{ns}line[@class='slo']")) for c in charts[:3]] == [0, 1, 1]
    # The stand-in's line is dashed, the engines' are solid.
    assert ["stroke-dasharray" in line.attrib for line in charts[0].findall(f"{ns}polyline")] == [
        False, False, True,
    ]  # fmt: skip
    assert (
        "The ollama figures come from a server that said it is not ollama (llmprov test "
        "stand-in, not Ollama): not the engine's own, and not ranked." in page
    )
    # The record rides along, and reads back as the same report.
    record = re.search(
        r'<script type="application/json" id="advise-report">(.*?)</script>', page, re.S
    )
    assert record is not None
    assert report_from_json(record[1], "page") == sample_report()


def test_chart_points_sit_where_their_values_are() -> None:
    svg = ET.fromstring(
        line_chart("t", "ms", [1, 2, 4], [Series("a", "#000", ((1, 0.0), (4, 50.0)))], limit=100.0)
    )
    ns = "{http://www.w3.org/2000/svg}"
    points = [
        tuple(map(float, p.split(","))) for p in svg.find(f"{ns}polyline").attrib["points"].split()
    ]  # type: ignore[union-attr]
    slo_y = float(svg.find(f"{ns}line[@class='slo']").attrib["y1"])  # type: ignore[union-attr]
    bottom = points[0][1]
    # Axis top is nice_ceiling(105) = 200: 50 sits a quarter up, the SLO of 100 half way.
    assert nice_ceiling(105.0) == 200.0
    assert points[0][0] < points[1][0]
    assert bottom - points[1][1] == pytest.approx((bottom - slo_y) / 2)


def test_text_in_the_page_is_escaped() -> None:
    report = sample_report().model_copy(update={"model": "<script>alert(1)</script>"})
    page = report_to_html(report)
    assert "<script>alert" not in page and "</script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
